"""The paragraph index: build, save, load and search (FAISS for meaning, BM25 for words).

On disk an index is one folder:

    manifest.json     format version, embedder name and hash, dimension, count, sources
    paragraphs.jsonl  one paragraph per line (id, document, label, number, section, text)
    vectors.npy       float32 [count, dimension], normalised, same order as paragraphs
    faiss.index       the FAISS index over vectors.npy (exact inner product by default)

A build writes everything into a temporary sibling folder, the manifest last, and only then
swaps it in place of the old one, so an interrupted build leaves the previous index intact.
A rebuild re-embeds only paragraphs whose text it has not embedded before with the same
embedder. The BM25 side is rebuilt from the paragraphs at load: it is cheap and keeps the
on-disk format to the four files above.

This is the only module that imports faiss (and bm25s). The embedder is injected: anything
with `name`, `sha256`, `dimension` and `encode(texts) -> np.ndarray` will do.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .documents import Document, Paragraph
from .errors import IndexStoreError, QuestionError
from .grounding import STOPWORDS

FORMAT_VERSION = 2  # 2: paragraphs carry a page (issue 12); version 1 indexes are rebuilt
MANIFEST = "manifest.json"
PARAGRAPHS = "paragraphs.jsonl"
VECTORS = "vectors.npy"
FAISS_FILE = "faiss.index"
REQUIRED_FILES = (MANIFEST, PARAGRAPHS, VECTORS, FAISS_FILE)
MAX_QUERY_CHARS = 2000
FUSIONS = ("weighted", "rrf")
MODES = ("dense", "lexical", "hybrid")


class OutdatedIndexError(IndexStoreError):
    """An index in an older on-disk format; `sources` are the files it was built from, so the
    caller can rebuild it."""

    def __init__(self, message: str, sources: list[Path]):
        super().__init__(message)
        self.sources = sources


class EmbedderLike(Protocol):
    name: str
    sha256: str
    dimension: int

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    """One retrieved paragraph with the scores that ranked it."""

    paragraph: Paragraph
    score: float  # the fused score the ranking used
    dense: float  # cosine similarity to the query
    lexical: float  # BM25 score (0 when no query word occurs in the paragraph)
    rank: int  # 1-based


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _indexed_text(paragraph: Paragraph) -> str:
    # What is embedded and what BM25 indexes: the section title gives short paragraphs
    # context ("Panel Discussion", "Recipients") at no cost.
    return f"{paragraph.section}: {paragraph.text}" if paragraph.section else paragraph.text


def _tokenizer():
    import Stemmer  # PyStemmer: "restraint"/"restrain", "led"/"leads" meet in BM25

    import bm25s
    from bm25s.stopwords import STOPWORDS_EN

    stemmer = Stemmer.Stemmer("english")
    # bm25s's own English list has 33 words and keeps "what", "who", "did", "were": a document
    # that happens to say "what" once then matches every "What ...?" question best. Question
    # and function words are no evidence of a topic, on either side.
    stopwords = sorted(set(STOPWORDS_EN) | STOPWORDS)

    def tokenize(texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(
            texts, stopwords=stopwords, stemmer=stemmer, return_ids=False, show_progress=False
        )

    return tokenize


class ParagraphIndex:
    """Paragraphs, their vectors, a FAISS index and a BM25 index, searchable together."""

    def __init__(self, paragraphs: list[Paragraph], vectors: np.ndarray, embedder: EmbedderLike,
                 manifest: dict, faiss_index=None):
        import bm25s

        self.paragraphs = paragraphs
        self.vectors = vectors
        self.embedder = embedder
        self.manifest = manifest
        self.faiss_index = faiss_index if faiss_index is not None else _exact_index(vectors)
        self._tokenize = _tokenizer()
        self.bm25 = bm25s.BM25()
        self.bm25.index(self._tokenize([_indexed_text(p) for p in paragraphs]), show_progress=False)
        self.by_id = {p.id: p for p in paragraphs}

    def __len__(self) -> int:
        return len(self.paragraphs)

    @property
    def documents(self) -> list[str]:
        return [source["name"] for source in self.manifest.get("sources", [])]

    # ------------------------------------------------------------------ search

    def lexical_scores(self, query: str) -> np.ndarray:
        tokens = self._tokenize([query])[0]
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        if not known:
            return np.zeros(len(self.paragraphs), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32)

    def search(self, query: str, k: int = 5, mode: str = "hybrid", dense_weight: float = 0.7,
               fusion: str = "weighted", query_vector: np.ndarray | None = None) -> list[Hit]:
        """The k best paragraphs for a query, best first."""
        query = (query or "").strip()
        if not query:
            raise QuestionError("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise QuestionError(f"the query is {len(query):,} characters; the limit is {MAX_QUERY_CHARS:,}")
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r} (choose from {', '.join(MODES)})")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r} (choose from {', '.join(FUSIONS)})")
        k = max(1, min(k, len(self.paragraphs)))
        if query_vector is None:
            query_vector = self.embedder.encode([query])[0]
        query_vector = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)

        # Candidates: the dense top-n plus the lexical top-n; both scores for each of them.
        n = min(len(self.paragraphs), max(50, 5 * k))
        _, dense_ids = self.faiss_index.search(query_vector, n)
        lexical = self.lexical_scores(query)
        lexical_top = np.argsort(-lexical, kind="stable")[:n] if lexical.any() else np.array([], dtype=int)
        candidates = np.unique(np.concatenate([dense_ids[0][dense_ids[0] >= 0], lexical_top]).astype(int))
        dense = self.vectors[candidates] @ query_vector[0]
        lex = lexical[candidates]

        if mode == "dense":
            fused = dense
        elif mode == "lexical":
            fused = lex + 1e-6 * dense  # dense breaks ties between paragraphs without the words
        elif fusion == "rrf":
            fused = _rrf(dense) + _rrf(lex)
        else:
            # Dense cosine is already on a fixed scale; BM25 is scaled by its best score so one
            # weight works for any corpus size.
            top = float(lexical.max()) or 1.0
            fused = dense_weight * dense + (1 - dense_weight) * (lex / top)
        order = np.lexsort((candidates, -fused))[:k]  # ties broken by position in the corpus
        return [
            Hit(self.paragraphs[candidates[i]], float(fused[i]), float(dense[i]), float(lex[i]), rank + 1)
            for rank, i in enumerate(order)
        ]


def _rrf(scores: np.ndarray, constant: int = 60) -> np.ndarray:
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return 1.0 / (constant + ranks)


def _exact_index(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(vectors)
    return index


# --------------------------------------------------------------------------- build / save


def build_index(documents: list[Document], embedder: EmbedderLike, target: Path,
                progress: Callable[[int, int], None] | None = None) -> ParagraphIndex:
    """Embed the documents' paragraphs and swap a complete new index in at `target`.

    Vectors of paragraphs already in the existing index (same text, same embedder) are
    reused, so adding one document re-embeds only that document.
    """
    target = Path(target)
    paragraphs = [p for document in documents for p in document.paragraphs]
    if not paragraphs:
        raise IndexStoreError("nothing to index: the documents have no paragraphs")
    ids = [p.id for p in paragraphs]
    if len(set(ids)) != len(ids):
        raise IndexStoreError("two paragraphs share an id; rename one of the documents")

    reusable = _reusable_vectors(target, embedder)
    texts = [_indexed_text(p) for p in paragraphs]
    keys = [_text_key(t) for t in texts]
    todo = [i for i, key in enumerate(keys) if key not in reusable]
    vectors = np.zeros((len(paragraphs), embedder.dimension), dtype=np.float32)
    for i, key in enumerate(keys):
        if key in reusable:
            vectors[i] = reusable[key]
    batch = 256
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        vectors[chunk] = embedder.encode([texts[i] for i in chunk])
        if progress:
            progress(min(start + batch, len(todo)), len(todo))

    manifest = {
        "format_version": FORMAT_VERSION,
        "embedder": {"name": embedder.name, "sha256": embedder.sha256},
        "dimension": int(embedder.dimension),
        "count": len(paragraphs),
        "sources": [
            {"name": d.path.name, "path": str(d.path), "doc_id": d.doc_id, "sha256": d.sha256,
             "paragraphs": len(d.paragraphs)}
            for d in documents
        ],
        "embedded": len(todo),
        "reused": len(paragraphs) - len(todo),
        "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    faiss_index = _exact_index(vectors)
    _write_atomically(target, paragraphs, vectors, faiss_index, manifest)
    return ParagraphIndex(paragraphs, vectors, embedder, manifest, faiss_index)


def _reusable_vectors(target: Path, embedder: EmbedderLike) -> dict[str, np.ndarray]:
    try:
        manifest = _read_manifest(target)
        if manifest["embedder"]["sha256"] != embedder.sha256 or manifest["dimension"] != embedder.dimension:
            return {}
        paragraphs = _read_paragraphs(target)
        vectors = np.load(target / VECTORS)
    except (IndexStoreError, OSError, ValueError, KeyError):
        return {}  # nothing usable: embed everything
    if len(vectors) != len(paragraphs):
        return {}
    return {_text_key(_indexed_text(p)): v for p, v in zip(paragraphs, vectors)}


def _write_atomically(target: Path, paragraphs, vectors, faiss_index, manifest) -> None:
    import faiss

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        with open(staging / PARAGRAPHS, "w", encoding="utf-8") as handle:
            for p in paragraphs:
                handle.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
        np.save(staging / VECTORS, vectors)
        faiss.write_index(faiss_index, str(staging / FAISS_FILE))
        # The manifest is written last: a folder without one is never a complete index.
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, target: Path) -> None:
    """Replace target by staging. If we die half-way, load() finds the old index at .old."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- load


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.exists():
        raise IndexStoreError(f"no index at {folder} (missing {MANIFEST}): build it with `qa index`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IndexStoreError(f"{path} is corrupt: rebuild the index with `qa index`") from None


def _read_paragraphs(folder: Path) -> list[Paragraph]:
    try:
        with open(folder / PARAGRAPHS, encoding="utf-8") as handle:
            return [Paragraph.from_dict(json.loads(line)) for line in handle if line.strip()]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise IndexStoreError(f"{folder / PARAGRAPHS} is corrupt: rebuild the index with `qa index`") from None


def recover(target: Path) -> None:
    """Finish a swap that was cut between its two renames."""
    old = target.with_name(f".{target.name}.old")
    if not target.exists() and (old / MANIFEST).exists():
        os.replace(old, target)


def load_index(target: Path, embedder: EmbedderLike) -> ParagraphIndex:
    """Load an index and check it matches this embedder; every failure names the fix."""
    import faiss

    target = Path(target)
    recover(target)
    if not target.exists():
        raise IndexStoreError(f"no index at {target}: build it with `qa index`")
    manifest = _read_manifest(target)
    missing = [name for name in REQUIRED_FILES if not (target / name).exists()]
    if missing:
        raise IndexStoreError(f"the index at {target} is incomplete (missing {', '.join(missing)}): rebuild it with `qa index`")
    version = manifest.get("format_version")
    if isinstance(version, int) and version < FORMAT_VERSION:
        sources = [Path(source["path"]) for source in manifest.get("sources", []) if source.get("path")]
        raise OutdatedIndexError(
            f"the index at {target} has format version {version}, this program reads version "
            f"{FORMAT_VERSION} (paragraphs now carry their page): rebuild it with `qa index`", sources)
    if version != FORMAT_VERSION:
        raise IndexStoreError(
            f"the index at {target} has format version {version}, this program reads version "
            f"{FORMAT_VERSION}: rebuild it with `qa index`"
        )
    built_with = manifest.get("embedder", {})
    if built_with.get("sha256") != embedder.sha256:
        raise IndexStoreError(
            f"the index at {target} was built with embedder '{built_with.get('name')}', not "
            f"'{embedder.name}': rebuild it with `qa index` (or use the same embedder)"
        )
    paragraphs = _read_paragraphs(target)
    try:
        vectors = np.load(target / VECTORS)
        faiss_index = faiss.read_index(str(target / FAISS_FILE))
    except (OSError, ValueError, RuntimeError):
        raise IndexStoreError(f"the vectors of the index at {target} are corrupt: rebuild it with `qa index`") from None
    expected = (manifest.get("count"), manifest.get("dimension"))
    if vectors.shape != expected or len(paragraphs) != expected[0] or faiss_index.ntotal != expected[0]:
        raise IndexStoreError(
            f"the index at {target} is inconsistent ({len(paragraphs)} paragraphs, vectors "
            f"{vectors.shape}, manifest says {expected}): rebuild it with `qa index`"
        )
    if vectors.shape[1] != embedder.dimension:
        raise IndexStoreError(f"the index at {target} has dimension {vectors.shape[1]}, the embedder {embedder.dimension}: rebuild it")
    return ParagraphIndex(paragraphs, vectors.astype(np.float32, copy=False), embedder, manifest, faiss_index)
