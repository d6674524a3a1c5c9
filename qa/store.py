"""The paragraph index: build, save, load and search (FAISS for meaning, BM25 for words).

On disk an index is one folder:

    manifest.json     format version, embedder name and hash, dimension, count, sources
    paragraphs.jsonl  one paragraph per line (id, document, label, number, section, text)
    offsets.npy       int64 [count + 1]: where each line of paragraphs.jsonl starts, so a
                      paragraph is read (and checked) when it is used, not all at load
    vectors.npy       float32 [count, dimension], normalised, same order as paragraphs
    faiss.index       the FAISS index over vectors.npy: exact inner product, or IVF from
                      APPROXIMATE_FROM paragraphs on (the manifest's "faiss" says which)
    bm25/             the BM25 index (bm25s's own files), memory-mapped at load
    ids.npy           int64 [count, 2]: a hash of each paragraph id and its row, sorted by
                      hash, so a paragraph is found by id without reading them all
    statistics.json   what the answer side knows of the whole collection (qa/corpus_stats.py)
    labels.json       each paragraph label and the rows that carry it (read on first use)
    flat.txt          the whole text flattened, searched for multi-word names (memory-mapped)
    sources/<doc id>/<file name>   a copy of each source file, so a source that moves or
                      vanishes can still be re-indexed (adding a document re-reads the others)

The manifest records the size and sha256 of every data file, and load verifies them: a
tampered or rotten file is refused with a line naming it, instead of answering from edited
paragraphs or random vectors. Sizes are checked at every load. Hashing reads every byte
(4 GB at a million paragraphs, over 2 s), so an index larger than VERIFY_AT_LOAD_BYTES loads
memory-mapped at once and is hashed in a background thread; if a file fails, every search
from then on raises the same one-line error. Everything else about the files is
checked too (manifest schema, paragraph fields, counts, FAISS dimension), and any failure to
load is one IndexStoreError line, never a traceback. Indexes written before the checksums
(no "files" in the manifest) still load, without that check.

A build writes everything into a temporary sibling folder, the manifest last, and only then
swaps it in place of the old one, so an interrupted build leaves the previous index intact.
Builds of one index hold a lock file (`.NAME.lock`), so the next build can safely remove
the staging folders (`.NAME.building-*`) that killed builds left behind.
A rebuild re-embeds only paragraphs whose text it has not embedded before with the same
embedder. BM25 is built with the vectors, in the same staging folder, and saved next to them
(rebuilding it at every load took 10 s at 100,000 paragraphs); the load checks that both
count the same paragraphs as the manifest.

Nothing at load is proportional to the collection but the statistics' vocabularies:
paragraphs, vectors, the IVF lists, BM25, the ids and the flattened text are memory-mapped
(`python -m qa.bench retrieval` measures it at 1,000,000).

This is the only module that imports faiss (and bm25s). The embedder is injected: anything
with `name`, `sha256`, `dimension` and `encode(texts) -> np.ndarray` will do.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import mmap
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from . import corpus_stats
from .corpus_stats import CorpusStatistics
from .documents import Document, Paragraph, document_names
from .errors import IndexStoreError, QuestionError
from .grounding import STOPWORDS
from .policy import DEFAULT_POLICY

FORMAT_VERSION = 5  # older indexes are rebuilt from their sources (Service.index)
FORMAT_CHANGES = {2: "paragraphs now carry their page", 3: "BM25 is now saved with the index",
                  4: "paragraphs are read when used, and large indexes are IVF, so they load at once",
                  5: "the answer side's statistics are stored with the index, so it starts at once"}
MANIFEST = "manifest.json"
PARAGRAPHS = "paragraphs.jsonl"
OFFSETS = "offsets.npy"
VECTORS = "vectors.npy"
FAISS_FILE = "faiss.index"
SOURCES = "sources"
BM25_DIR = "bm25"
# What bm25s's BM25.save writes for its default ("lucene") method; all of it is checksummed.
BM25_FILES = tuple(f"{BM25_DIR}/{name}" for name in (
    "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json", "params.index.json"))
IDS = "ids.npy"
DATA_FILES = (PARAGRAPHS, OFFSETS, VECTORS, FAISS_FILE, *BM25_FILES, IDS, corpus_stats.STATISTICS,
              corpus_stats.LABELS, corpus_stats.FLAT_TEXT)  # sizes and checksums in the manifest
REQUIRED_FILES = (MANIFEST, *DATA_FILES)
MAX_QUERY_CHARS = 2000
FUSIONS = ("weighted", "rrf")
# Exact search reads every vector: measured here (1 thread, 384 dimensions) 10.7 ms per query
# at 100,000 paragraphs and linear beyond, so about 5 ms at 50,000 — still within the
# query budget, and exact is perfect and costs nothing to build. From 50,000 on, IVF: the
# vectors are split into IVF_LISTS_PER_ROOT * sqrt(count) lists around k-means centroids, and
# a query reads only the IVF_PROBE_FRACTION of lists nearest to it. HNSW, measured before it
# (qa.bench retrieval), missed the recall floor at 1,000,000 (0.66 at efSearch 128, 0.91 at
# 1024: the graph itself was the limit), took 17 minutes to build there and 3.5 GB in memory.
# An IVF trains in about a minute, and its lists are memory-mapped at load.
APPROXIMATE_FROM = 50_000
IVF_LISTS_PER_ROOT = 4  # faiss's guideline is 4-16 sqrt(n): fewer, longer lists read more per probe
IVF_PROBE_FRACTION = 1 / 32
# Recall needs about as many probes whatever the size: on real MiniLM embeddings of 59,000
# docstring paragraphs (1,024 lists) recall@10 was 0.90 at 32 probes, 0.94 at 64 and 0.97 at
# 128; reading 128 lists of a million paragraphs costs ~5 ms a query.
IVF_MIN_PROBES = 128
IVF_TRAINING_PER_LIST = 50  # k-means sees 50 vectors per centroid (faiss warns below 39)
# Hashing every byte at load costs ~0.6 s per GB here: up to this size an index is verified
# before it answers; past it, in a background thread while it answers.
VERIFY_AT_LOAD_BYTES = 256 * 2**20
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
    """Paragraphs, their vectors, a FAISS index and a BM25 index, searchable together.

    `paragraphs` is any sequence: a list after a build, the stored file (read on demand)
    after a load. `ids` is the sorted (hash of id, row) table (`id_table`), `statistics` the
    answer side's view of the collection (qa/corpus_stats.py); both are computed from the
    paragraphs when not given. `verification` is a check still running in the background (a
    large index's checksums): searches raise its error once it has found one."""

    def __init__(self, paragraphs: Sequence[Paragraph], vectors: np.ndarray, embedder: EmbedderLike,
                 manifest: dict, faiss_index=None, bm25=None, verification: "Verification | None" = None,
                 ids: np.ndarray | None = None, statistics: CorpusStatistics | None = None):
        self.paragraphs = paragraphs
        self.vectors = vectors
        self.embedder = embedder
        self.manifest = manifest
        self.faiss_index = faiss_index if faiss_index is not None else make_faiss_index(vectors)[0]
        self._tokenize = _tokenizer()
        self.bm25 = bm25 if bm25 is not None else build_bm25(paragraphs, self._tokenize)
        self.verification = verification
        self._ids = ids
        if statistics is not None:
            self.__dict__["statistics"] = statistics  # what the cached property would compute

    @functools.cached_property
    def statistics(self) -> CorpusStatistics:
        return corpus_stats.compute(self.paragraphs, self.documents)

    @functools.cached_property
    def by_id(self) -> "ParagraphsById":
        return ParagraphsById(self)

    def row_of(self, paragraph_id: str) -> int | None:
        """The row of the paragraph with this id, or None: a look-up in the id table, then
        the paragraph itself read to confirm it (two ids may share a hash)."""
        if self._ids is None:
            self._ids = id_table([p.id for p in self.paragraphs])
        key = _id_hash(paragraph_id)
        hashes = self._ids[:, 0]
        start = int(np.searchsorted(hashes, key, side="left"))
        for position in range(start, len(hashes)):
            if hashes[position] != key:
                break
            row = int(self._ids[position, 1])
            if 0 <= row < len(self.paragraphs) and self.paragraphs[row].id == paragraph_id:
                return row
        return None

    def __len__(self) -> int:
        return len(self.paragraphs)

    def check_integrity(self) -> None:
        """Raise the IndexStoreError the background verification found, if it found one."""
        if self.verification is not None:
            self.verification.raise_problem()

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

    def search(self, query: str, k: int = 5, mode: str = "hybrid", dense_weight: float = DEFAULT_POLICY.dense_weight,
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
        self.check_integrity()
        k = max(1, min(k, len(self.paragraphs)))
        if query_vector is None:
            query_vector = self.embedder.encode([query])[0]
        query_vector = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)

        # Candidates: the dense top-n plus the lexical top-n; both scores for each of them.
        n = min(len(self.paragraphs), max(50, 5 * k))
        _, dense_ids = self.faiss_index.search(query_vector, n)
        lexical = self.lexical_scores(query)
        lexical_top = _top_n(lexical, n) if lexical.any() else np.array([], dtype=int)
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


class ParagraphsById(Mapping):
    """An index's paragraphs by id, each found when asked (`ParagraphIndex.row_of`), so a
    look-up does not first read a million paragraphs. Iterating reads them all."""

    def __init__(self, index: ParagraphIndex):
        self.index = index

    def __getitem__(self, paragraph_id: str) -> Paragraph:
        row = self.index.row_of(paragraph_id) if isinstance(paragraph_id, str) else None
        if row is None:
            raise KeyError(paragraph_id)
        return self.index.paragraphs[row]

    def __iter__(self):
        return (p.id for p in self.index.paragraphs)

    def __len__(self) -> int:
        return len(self.index.paragraphs)


def _id_hash(paragraph_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(paragraph_id.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def id_table(ids: Sequence[str]) -> np.ndarray:
    """int64 [n, 2]: (hash of each id, its row), sorted by hash then row."""
    table = np.empty((len(ids), 2), dtype=np.int64)
    table[:, 0] = np.fromiter((_id_hash(i) for i in ids), dtype=np.int64, count=len(ids))
    table[:, 1] = np.arange(len(ids))
    return table[np.lexsort((table[:, 1], table[:, 0]))]


def _rrf(scores: np.ndarray, constant: int = 60) -> np.ndarray:
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return 1.0 / (constant + ranks)


def _top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """The same set as np.argsort(-scores, kind="stable")[:n] (ties: lowest positions), in
    linear time: a full sort of 100,000 scores took ~7 ms, most of a query's budget."""
    if n >= len(scores):
        return np.arange(len(scores))
    threshold = np.partition(scores, len(scores) - n)[len(scores) - n]
    above = np.flatnonzero(scores > threshold)
    ties = np.flatnonzero(scores == threshold)[: n - len(above)]
    return np.concatenate([above, ties])


def _faiss():
    import faiss

    # QA_THREADS caps every library's threads (models._configure_torch does the same for torch).
    threads = int(os.environ.get("QA_THREADS", "0") or 0)
    if threads > 0:
        faiss.omp_set_num_threads(threads)
    return faiss


def _faiss_spec(count: int) -> dict:
    """The manifest entry of the FAISS index for `count` paragraphs. The number of lists is a
    power of two, so an index that grows within one keeps its trained centroids."""
    if count < APPROXIMATE_FROM:
        return {"type": "flat"}
    lists = 2 ** round(np.log2(IVF_LISTS_PER_ROOT * np.sqrt(count)))
    probes = min(lists, max(IVF_MIN_PROBES, round(lists * IVF_PROBE_FRACTION)))
    return {"type": "ivf", "lists": int(lists), "probes": int(probes)}


def make_faiss_index(vectors: np.ndarray):
    """The FAISS index for these vectors and its manifest entry: exact below
    APPROXIMATE_FROM paragraphs, IVF (k-means lists, exact inner product within them) from
    there on."""
    faiss = _faiss()
    spec = _faiss_spec(len(vectors))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if spec["type"] == "flat":
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], spec["lists"], faiss.METRIC_INNER_PRODUCT)
        index.nprobe = spec["probes"]
        # A fixed sample (k-means is seeded too): the same paragraphs give the same index.
        sample = min(len(vectors), IVF_TRAINING_PER_LIST * spec["lists"])
        rows = np.sort(np.random.default_rng(0).choice(len(vectors), sample, replace=False))
        index.train(vectors[rows])  # (faiss's wrapper keeps the quantizer alive with the index)
    if len(vectors):
        index.add(vectors)
    return index, spec


def build_bm25(paragraphs: list[Paragraph], tokenize=None, names: dict[str, str] | None = None):
    """BM25 over the paragraphs; `names`: each document's own name (documents.document_names),
    when already known."""
    import bm25s

    tokenize = tokenize or _tokenizer()
    # Words naming a whole document ("MPL", "gzip") are in each of its paragraphs for BM25:
    # they pick the document among several, never one paragraph that repeats its name.
    names = names if names is not None else document_names(paragraphs)
    bm25 = bm25s.BM25()
    bm25.index(tokenize([names[p.document] + " " + _indexed_text(p) for p in paragraphs]), show_progress=False)
    return bm25


# --------------------------------------------------------------------------- build / save


def build_index(documents: list[Document], embedder: EmbedderLike, target: Path,
                progress: Callable[[int, int], None] | None = None,
                origins: dict[str, str] | None = None) -> ParagraphIndex:
    """Embed the documents' paragraphs and swap a complete new index in at `target`.

    Vectors of paragraphs already in the existing index (same text, same embedder) are
    reused, so adding one document re-embeds only that document. `origins` maps a doc_id to
    the path to record for it when the document is read from the index's own copy (its
    original file may be gone). The manifest's "changes" says which documents this build
    added, replaced (same name, other content) and dropped, against the previous index.
    """
    target = Path(target)
    paragraphs = [p for document in documents for p in document.paragraphs]
    if not paragraphs:
        raise IndexStoreError("nothing to index: the documents have no paragraphs")
    ids = [p.id for p in paragraphs]
    if len(set(ids)) != len(ids):
        raise IndexStoreError("two paragraphs share an id; rename one of the documents")

    with _build_lock(target):
        previous = _previous_sources(target)
        reusable, old_keys = _reusable_vectors(target, embedder)
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

        origins = origins or {}
        # Documents made in memory (the benchmark's) have no file to copy; adding documents
        # later then needs their original path, and says so if it is gone.
        copied = [d for d in documents if Path(d.path).is_file()]
        copied_ids = {d.doc_id for d in copied}
        sources = [
            {"name": d.path.name, "path": origins.get(d.doc_id, str(d.path)), "doc_id": d.doc_id,
             "sha256": d.sha256, "paragraphs": len(d.paragraphs)}
            | ({"copy": _copy_name(d)} if d.doc_id in copied_ids else {})
            for d in documents
        ]
        manifest = {
            "format_version": FORMAT_VERSION,
            "embedder": {"name": embedder.name, "sha256": embedder.sha256},
            "dimension": int(embedder.dimension),
            "count": len(paragraphs),
            "sources": sources,
            "changes": _changes(previous, sources),
            "embedded": len(todo),
            "reused": len(paragraphs) - len(todo),
            "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        grown = _grown_faiss(target, old_keys, keys, vectors)
        faiss_index, manifest["faiss"] = grown or make_faiss_index(vectors)
        statistics = corpus_stats.compute(paragraphs, [source["name"] for source in sources])
        # From the very paragraphs the vectors are in, same order.
        bm25 = build_bm25(paragraphs, names=statistics.document_names)
        rows_by_id = id_table(ids)
        _write_atomically(target, paragraphs, vectors, faiss_index, bm25, manifest, copied, rows_by_id, statistics)
    return ParagraphIndex(paragraphs, vectors, embedder, manifest, faiss_index, bm25, ids=rows_by_id,
                          statistics=statistics)


def _copy_name(document: Document) -> str:
    # Under the doc id, which is unique in the index, so two sources of the same name in
    # different folders do not collide; the file keeps its name, which paragraphs cite.
    return f"{SOURCES}/{document.doc_id}/{document.path.name}"


def _previous_sources(target: Path) -> list[dict]:
    try:
        return _read_manifest(target)["sources"]
    except IndexStoreError:
        return []  # no usable index before: everything is added


def _changes(previous: list[dict], sources: list[dict]) -> dict:
    """Added, replaced (same name, other content) and dropped document names."""
    old = {s["name"]: s["sha256"] for s in previous}
    new = {s["name"]: s["sha256"] for s in sources}
    return {
        "added": [name for name in new if name not in old],
        "replaced": [name for name in new if name in old and old[name] != new[name]],
        "dropped": [name for name in old if name not in new],
    }


@contextlib.contextmanager
def _build_lock(target: Path):
    """One build of an index at a time; the lock dies with its process, even on kill -9."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock, and so no clean-up of others' staging folders
        yield
        return
    with open(target.with_name(f".{target.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            # We hold the lock, so no other build is running: any staging folder is debris
            # of a killed one.
            for stale in target.parent.glob(f".{target.name}.building-*"):
                shutil.rmtree(stale, ignore_errors=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reusable_vectors(target: Path, embedder: EmbedderLike) -> tuple[dict[str, np.ndarray], list[str]]:
    """The previous index's vectors by text key, and its keys in order ({}, [] if none)."""
    try:
        try:
            manifest = _read_manifest(target)
        except OutdatedIndexError:  # an older format's vectors are still good: not re-embedded
            manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        if manifest["embedder"]["sha256"] != embedder.sha256 or manifest["dimension"] != embedder.dimension:
            return {}
        paragraphs = _read_paragraphs(target)
        vectors = np.load(target / VECTORS)
    except Exception:  # anything unreadable is simply not reused: embed everything
        return {}, []
    if vectors.ndim != 2 or len(vectors) != len(paragraphs) or vectors.shape[1] != embedder.dimension:
        return {}, []
    keys = [_text_key(_indexed_text(p)) for p in paragraphs]
    return dict(zip(keys, vectors)), keys


def _grown_faiss(target: Path, old_keys: list[str], keys: list[str], vectors: np.ndarray):
    """The previous FAISS index with only the new paragraphs added to it, when this build
    appends paragraphs to the previous ones and changes nothing else (adding documents, or
    rebuilding unchanged ones): an IVF keeps its trained centroids, and only the new
    vectors are assigned to its lists. None when it cannot be reused (anything else changed, the index type would
    change, or its file fails its checksum); the caller then builds a new one."""
    if not old_keys or keys[:len(old_keys)] != old_keys:
        return None
    try:
        manifest = _read_manifest(target)
        expected = manifest.get("files", {}).get(FAISS_FILE)
        if manifest["faiss"] != _faiss_spec(len(keys)) or not expected \
                or _sha256_file(target / FAISS_FILE) != expected:
            return None
        index = _faiss().read_index(str(target / FAISS_FILE))
    except Exception:  # anything unreadable: build a new one
        return None
    if index.ntotal != len(old_keys) or index.d != vectors.shape[1]:
        return None
    if len(keys) > len(old_keys):
        index.add(np.ascontiguousarray(vectors[len(old_keys):], dtype=np.float32))
    return index, manifest["faiss"]


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return _sha256_of(handle)


def _sha256_of(handle) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _write_atomically(target: Path, paragraphs, vectors, faiss_index, bm25, manifest, copied, ids, statistics) -> None:
    faiss = _faiss()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        offsets = np.zeros(len(paragraphs) + 1, dtype=np.int64)
        with open(staging / PARAGRAPHS, "wb") as handle:
            for n, p in enumerate(paragraphs, 1):
                handle.write((json.dumps(p.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
                offsets[n] = handle.tell()
        np.save(staging / OFFSETS, offsets)
        np.save(staging / VECTORS, vectors)
        faiss.write_index(faiss_index, str(staging / FAISS_FILE))
        bm25.save(str(staging / BM25_DIR), show_progress=False)
        np.save(staging / IDS, ids)
        corpus_stats.save(statistics, staging)
        for document in copied:
            copy = staging / _copy_name(document)
            copy.parent.mkdir(parents=True, exist_ok=True)
            data = Path(document.path).read_bytes()
            if hashlib.sha256(data).hexdigest() != document.sha256:
                raise IndexStoreError(f"{document.path.name} changed while it was being indexed: index it again")
            copy.write_bytes(data)
        manifest["files"] = {name: _sha256_file(staging / name) for name in DATA_FILES}
        manifest["sizes"] = {name: (staging / name).stat().st_size for name in DATA_FILES}
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


def stored_copy(target: Path, source: dict) -> Path | None:
    """The index's own copy of a source file, if it has one and it is intact."""
    copy = source.get("copy")
    if not copy:
        return None  # an index built before copies were kept
    path = Path(target) / copy
    if not path.is_file() or _sha256_file(path) != source["sha256"]:
        return None
    return path


# --------------------------------------------------------------------------- load


_REBUILD = "rebuild the index with `qa index`"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _read_manifest(folder: Path) -> dict:
    """The manifest, checked against its schema; an IndexStoreError naming what is wrong."""
    path = folder / MANIFEST
    if not path.exists():
        raise IndexStoreError(f"no index at {folder} (missing {MANIFEST}): build it with `qa index`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise IndexStoreError(f"{path} is corrupt: {_REBUILD}") from None
    if not isinstance(manifest, dict):
        raise IndexStoreError(f"{path} is corrupt (not a JSON object): {_REBUILD}")
    version = manifest.get("format_version")
    if isinstance(version, int) and version < FORMAT_VERSION and isinstance(manifest.get("sources"), list):
        sources = [Path(source["path"]) for source in manifest["sources"]
                   if isinstance(source, dict) and isinstance(source.get("path"), str)]
        raise OutdatedIndexError(
            f"the index at {folder} has format version {version}, this program reads version "
            f"{FORMAT_VERSION} ({FORMAT_CHANGES[FORMAT_VERSION]}): rebuild it with `qa index`", sources)
    if version != FORMAT_VERSION:  # before the schema: another version may have another one
        raise IndexStoreError(
            f"the index at {folder} has format version {version}, this program reads version "
            f"{FORMAT_VERSION}: rebuild it with `qa index`"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise IndexStoreError(f"{path} is corrupt ({problem}): {_REBUILD}")
    return manifest


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _manifest_problem(m: dict) -> str:
    """What is wrong with a manifest's shape, or "" when nothing is."""
    embedder = m.get("embedder")
    if not isinstance(embedder, dict) or not all(isinstance(embedder.get(k), str) for k in ("name", "sha256")):
        return '"embedder" must be {"name", "sha256"} strings'
    for key in ("dimension", "count"):
        if not _is_int(m.get(key)) or m[key] < (1 if key == "dimension" else 0):
            return f'"{key}" must be a positive integer'
    sources = m.get("sources")
    if not isinstance(sources, list):
        return '"sources" must be a list'
    for n, source in enumerate(sources, 1):
        if not isinstance(source, dict) or not all(isinstance(source.get(k), str) for k in ("name", "path", "doc_id", "sha256")) \
                or not _is_int(source.get("paragraphs")):
            return f"source {n} must have name, path, doc_id, sha256 and paragraphs"
        copy = source.get("copy")
        if copy is not None and (not isinstance(copy, str) or Path(copy).is_absolute()
                                 or ".." in Path(copy).parts or Path(copy).parts[:1] != (SOURCES,)):
            return f"source {n} has a copy outside the index folder"
    files = m.get("files")
    if files is not None:  # absent in indexes built before checksums: still loadable
        if not isinstance(files, dict) or set(files) != set(DATA_FILES) \
                or not all(isinstance(v, str) and _HEX64.fullmatch(v) for v in files.values()):
            return f'"files" must give the sha256 of {", ".join(DATA_FILES)}'
    kind = m.get("faiss")
    if not isinstance(kind, dict) or kind.get("type") not in ("flat", "ivf"):
        return '"faiss" must be {"type": "flat" or "ivf"}'
    if kind["type"] == "ivf" and not all(_is_int(kind.get(k)) and kind[k] > 0 for k in ("lists", "probes")):
        return '"faiss" of type ivf must give positive "lists" and "probes"'
    sizes = m.get("sizes")
    if sizes is not None and (not isinstance(sizes, dict) or set(sizes) != set(DATA_FILES)
                              or not all(_is_int(v) and v >= 0 for v in sizes.values())):
        return f'"sizes" must give the size in bytes of {", ".join(DATA_FILES)}'
    return ""


_PARAGRAPH_FIELDS = ("id", "document", "label", "section", "text")


def _paragraph_record(line: bytes | str, path: Path, number: int) -> Paragraph:
    """One line of paragraphs.jsonl as a Paragraph, checked; an IndexStoreError naming the line."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        data = None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in _PARAGRAPH_FIELDS) \
            or not (data.get("number") is None or _is_int(data.get("number"))):
        raise IndexStoreError(f"{path} is corrupt (line {number} is not a paragraph record): {_REBUILD}")
    return Paragraph.from_dict(data)


def _read_paragraphs(folder: Path) -> list[Paragraph]:
    """Every paragraph of an index folder, read whole (an older format has no offsets.npy)."""
    path = folder / PARAGRAPHS
    with open(path, "rb") as handle:
        return [_paragraph_record(line, path, number) for number, line in enumerate(handle, 1) if line.strip()]


def recover(target: Path) -> None:
    """Finish a swap that was cut between its two renames."""
    old = target.with_name(f".{target.name}.old")
    if not target.exists() and (old / MANIFEST).exists():
        os.replace(old, target)


def load_index(target: Path, embedder: EmbedderLike) -> ParagraphIndex:
    """Load an index and check it matches this embedder; every failure is one line naming the fix."""
    target = Path(target)
    try:
        return _load(target, embedder)
    except IndexStoreError:
        raise
    except Exception as error:  # whatever else a damaged folder causes: still one line, no traceback
        lines = str(error).strip().splitlines()
        detail = f"{error.__class__.__name__}: {lines[0]}" if lines else error.__class__.__name__
        raise IndexStoreError(f"the index at {target} cannot be read ({detail}): {_REBUILD}") from None


def _load(target: Path, embedder: EmbedderLike) -> ParagraphIndex:
    import bm25s

    faiss = _faiss()
    recover(target)
    if not target.exists():
        raise IndexStoreError(f"no index at {target}: build it with `qa index`")
    manifest = _read_manifest(target)
    missing = [name for name in REQUIRED_FILES if not (target / name).is_file()]
    if missing:
        raise IndexStoreError(f"the index at {target} is incomplete (missing {', '.join(missing)}): rebuild it with `qa index`")
    built_with = manifest["embedder"]
    if built_with["sha256"] != embedder.sha256:
        raise IndexStoreError(
            f"the index at {target} was built with embedder '{built_with['name']}', not "
            f"'{embedder.name}': rebuild it with `qa index` (or use the same embedder)"
        )
    for name, expected in manifest.get("sizes", {}).items():  # a stat each: cheap at any size
        if (target / name).stat().st_size != expected:
            raise IndexStoreError(
                f"{target / name} is corrupt or was changed after the build (its size does not match "
                f"the manifest): {_REBUILD}")
    total = sum((target / name).stat().st_size for name in DATA_FILES)
    verify_now = total <= VERIFY_AT_LOAD_BYTES
    if verify_now:
        # Checksums before parsing: an edited paragraph or replaced vectors would otherwise
        # load fine and answer wrongly.
        _verify_checksums(target, manifest)
    count, dimension = manifest["count"], manifest["dimension"]
    if dimension != embedder.dimension:
        raise IndexStoreError(f"the index at {target} has dimension {dimension}, the embedder {embedder.dimension}: rebuild it")
    try:
        # Memory-mapped: only the rows a query scores are read (1.5 GB per million paragraphs).
        vectors = np.load(target / VECTORS, allow_pickle=False, mmap_mode="r")  # never unpickle from disk
        kind = manifest["faiss"]["type"]
        # An IVF's lists are memory-mapped too (faiss maps the file itself); a flat index is
        # under APPROXIMATE_FROM paragraphs and read whole.
        faiss_index = faiss.read_index(str(target / FAISS_FILE), faiss.IO_FLAG_MMAP if kind == "ivf" else 0)
    except (OSError, ValueError, RuntimeError, EOFError):
        raise IndexStoreError(f"the vectors of the index at {target} are corrupt: rebuild it with `qa index`") from None
    paragraphs = _stored_paragraphs(target, count)
    try:
        bm25 = bm25s.BM25.load(str(target / BM25_DIR), mmap=True, show_progress=False)
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        raise IndexStoreError(f"the BM25 index at {target / BM25_DIR} is corrupt: {_REBUILD}") from None
    if kind != ("ivf" if isinstance(faiss_index, faiss.IndexIVF) else "flat" if isinstance(faiss_index, faiss.IndexFlat) else "?"):
        raise IndexStoreError(f"{target / FAISS_FILE} is not the {kind} index the manifest says: {_REBUILD}")
    if kind == "ivf":
        faiss_index.nprobe = manifest["faiss"]["probes"]
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
        raise IndexStoreError(f"{target / VECTORS} is corrupt (not a float matrix): {_REBUILD}")
    if faiss_index.d != dimension:
        raise IndexStoreError(f"{target / FAISS_FILE} has dimension {faiss_index.d}, the manifest says {dimension}: {_REBUILD}")
    bm25_count = bm25.scores.get("num_docs") if isinstance(bm25.scores, dict) else None
    if vectors.shape != (count, dimension) or len(paragraphs) != count or faiss_index.ntotal != count \
            or bm25_count != count:
        raise IndexStoreError(
            f"the index at {target} is inconsistent ({len(paragraphs)} paragraphs, vectors "
            f"{vectors.shape}, {faiss_index.ntotal} in FAISS, {bm25_count} in BM25, manifest says "
            f"{count} x {dimension}): rebuild it with `qa index`"
        )
    if sum(s["paragraphs"] for s in manifest["sources"]) != count:
        raise IndexStoreError(f"the index at {target} is inconsistent (its sources do not add up to {count} paragraphs): {_REBUILD}")
    try:
        ids = np.load(target / IDS, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        raise IndexStoreError(f"{target / IDS} is corrupt: {_REBUILD}") from None
    if ids.shape != (count, 2) or ids.dtype != np.int64:
        raise IndexStoreError(f"{target / IDS} is corrupt (not {count} ids): {_REBUILD}")
    statistics = corpus_stats.load(target, count)
    vectors = vectors.astype(np.float32, copy=False)
    verification = Verification(target, manifest, paragraphs, vectors)
    if verify_now:
        verification.check_contents()
        verification = None
    else:
        verification.start()
    return ParagraphIndex(paragraphs, vectors, embedder, manifest, faiss_index, bm25, verification, ids, statistics)


def _verify_checksums(target: Path, manifest: dict, opened: dict | None = None) -> None:
    """Every file's sha256 against the manifest; `opened` gives files already open (by name)."""
    for name, expected in manifest.get("files", {}).items():
        handle = opened[name] if opened else open(target / name, "rb")
        with handle:
            actual = _sha256_of(handle)
        if actual != expected:
            raise IndexStoreError(
                f"{target / name} is corrupt or was changed after the build (its sha256 does not "
                f"match the manifest): {_REBUILD}"
            )


class Verification:
    """The checks that read every byte of a loaded index: checksums, finite vectors and, for
    an index without checksums, every paragraph record. Run before a small index answers, or
    in a background thread for a large one (`start`), whose error `raise_problem` raises."""

    def __init__(self, target: Path, manifest: dict, paragraphs: Sequence[Paragraph], vectors: np.ndarray):
        self.target, self.manifest, self.paragraphs, self.vectors = target, manifest, paragraphs, vectors
        self.problem: IndexStoreError | None = None
        self._thread: threading.Thread | None = None

    def check_contents(self) -> None:
        """Everything but the checksums (which come before parsing when run at load)."""
        for start in range(0, len(self.vectors), 65_536):  # in blocks: no 1.5 GB temporary
            if not np.isfinite(self.vectors[start:start + 65_536]).all():
                raise IndexStoreError(f"{self.target / VECTORS} is corrupt (not a finite float matrix): {_REBUILD}")
        if "files" not in self.manifest:  # with checksums, the records are the ones the build wrote
            seen = set()
            for number, paragraph in enumerate(self.paragraphs, 1):
                if paragraph.id in seen:
                    raise IndexStoreError(
                        f"{self.target / PARAGRAPHS} is corrupt (line {number} repeats id {paragraph.id}): {_REBUILD}")
                seen.add(paragraph.id)

    def start(self) -> None:
        # Opened now, while the load still has them: a rebuild that swaps a new index in
        # before the hashing ends must not have its files checked against this manifest.
        opened = {name: open(self.target / name, "rb") for name in self.manifest.get("files", {})}
        self._thread = threading.Thread(target=self._run, args=(opened,), name="index-verification", daemon=True)
        self._thread.start()

    def _run(self, opened: dict) -> None:
        try:
            _verify_checksums(self.target, self.manifest, opened)
            self.check_contents()
        except IndexStoreError as error:
            self.problem = error
        except Exception as error:  # a file that cannot be read: corrupt to the user
            self.problem = IndexStoreError(f"the index at {self.target} cannot be read ({error.__class__.__name__}): {_REBUILD}")
        finally:
            for handle in opened.values():
                handle.close()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the verification has finished (found a problem or not)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def raise_problem(self) -> None:
        if self.problem is not None:
            raise self.problem


def _stored_paragraphs(target: Path, count: int) -> "StoredParagraphs":
    path = target / PARAGRAPHS
    try:
        offsets = np.load(target / OFFSETS, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        raise IndexStoreError(f"{target / OFFSETS} is corrupt: {_REBUILD}") from None
    size = path.stat().st_size
    if offsets.ndim != 1 or offsets.dtype != np.int64 or len(offsets) < 1 or offsets[0] != 0 \
            or offsets[-1] != size or (np.diff(offsets) <= 0).any():
        raise IndexStoreError(
            f"{path} is corrupt or was changed after the build (its lines do not start where {OFFSETS} says): {_REBUILD}")
    if len(offsets) - 1 != count:
        raise IndexStoreError(
            f"the index at {target} is inconsistent ({len(offsets) - 1} paragraphs, manifest says {count}): {_REBUILD}")
    return StoredParagraphs(path, offsets)


class StoredParagraphs(Sequence):
    """The paragraphs of a loaded index, read from the memory-mapped paragraphs.jsonl when
    used: a million records took seconds to parse at every load, while a question reads a
    few dozen. Each record is checked as it is read."""

    def __init__(self, path: Path, offsets: np.ndarray):
        self.path = path
        self._offsets = offsets
        with open(path, "rb") as handle:
            self._data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if int(offsets[-1]) else b""

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self._record(n) for n in range(*position.indices(len(self)))]
        n = int(position) + (len(self) if position < 0 else 0)
        if not 0 <= n < len(self):
            raise IndexError("paragraph position out of range")
        return self._record(n)

    def __iter__(self):
        return (self._record(n) for n in range(len(self)))

    def _record(self, n: int) -> Paragraph:
        return _paragraph_record(self._data[int(self._offsets[n]):int(self._offsets[n + 1])], self.path, n + 1)
