"""What the answer side knows of a whole collection, computed once when the index is built
and stored with it.

The grounding checks need collection-wide facts: every word the documents use (a question's
name they never use is not in them), how rare each word is (rare words weigh more in the
support check), which capitalised words are names, what acronyms stand for, each document's
own name, and where each paragraph label is. Computing them means reading every paragraph:
2 s at 10,000 paragraphs, 23 s and 1.4 GB at 100,000, minutes at a million. So `qa index`
computes them (`compute`) and writes them beside the vectors (`save`), and a start only
reads them back (`load`): the flattened text, searched for multi-word names, is memory-mapped
rather than read.

Pure Python, no ML imports.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from . import grounding
from .documents import Paragraph, document_names as names_of_documents
from .errors import IndexStoreError

STATISTICS = "statistics.json"
LABELS = "labels.json"
FLAT_TEXT = "flat.txt"
ACRONYM_PHRASES = 3  # phrases kept per initialism: the question's expansion uses three at most


@dataclass(frozen=True)
class CorpusStatistics:
    """The facts about a whole collection that the grounding checks read (qa/verify.py,
    qa/pipeline.py): computed from its paragraphs, or read back from its index."""

    vocabulary: frozenset[str]  # words, their stems and the initialisms of capitalised phrases
    words: frozenset[str]  # the words as written, lower-cased: is an acronym itself used?
    idf: grounding.Rarity  # weight per content stem
    names: frozenset[str]  # words capitalised inside sentences and never written in lower case
    acronyms: dict[str, tuple[str, ...]]  # initialism -> the first phrases it stands for
    document_names: dict[str, str]  # file name -> the words that name the document itself
    document_words: dict[str, int]  # file name -> how many words its paragraphs hold (the overview's length)
    labels: Mapping[str, list[int]]  # paragraph label -> the rows that carry it, in order
    text: grounding.FlatText  # the whole text, flattened, for multi-word names


def _texts(paragraphs: Iterable[Paragraph], documents: Sequence[str], names: dict[str, str]) -> list[str]:
    # What the documents say: paragraphs with their headings, the file names, the documents'
    # own names (a question may name the document itself).
    return [p.text + " " + p.section for p in paragraphs] + list(documents) + list(names.values())


def compute(paragraphs: Sequence[Paragraph], documents: Sequence[str]) -> CorpusStatistics:
    """The statistics of these paragraphs; `documents` are the file names in the index."""
    document_names = names_of_documents(paragraphs)
    texts = _texts(paragraphs, documents, document_names)
    acronyms: dict[str, set[str]] = {}
    for text in texts:
        for initials, phrases in grounding.acronym_phrases(text).items():
            acronyms.setdefault(initials, set()).update(phrases)
    labels: dict[str, list[int]] = {}
    words_per_document: dict[str, int] = {}
    for row, p in enumerate(paragraphs):
        labels.setdefault(p.label, []).append(row)
        words_per_document[p.document] = words_per_document.get(p.document, 0) + len(p.text.split())
    return CorpusStatistics(
        vocabulary=frozenset(grounding.vocabulary_of(texts)),
        words=frozenset(w.lower() for text in texts for w in grounding.words(text)),
        idf=grounding.inverse_document_frequency([p.text for p in paragraphs]),
        names=grounding.names_of(texts),
        acronyms={k: tuple(sorted(v)[:ACRONYM_PHRASES]) for k, v in acronyms.items()},
        document_names=document_names,
        document_words=words_per_document,
        labels=labels,
        text=grounding.FlatText(_flat(texts)),
    )


def _flat(texts: Iterable[str]) -> str:
    # As if the texts were joined by line breaks and flattened whole: a run of spaces and
    # hyphens across a join is one space.
    return " ".join(piece for piece in (grounding.flatten(t).strip(" ") for t in texts) if piece)


def save(statistics: CorpusStatistics, folder: Path) -> None:
    """Write the statistics into an index folder being built (three files)."""
    data = {
        "vocabulary": sorted(statistics.vocabulary),
        "words": sorted(statistics.words),
        "idf": dict(statistics.idf),
        "idf_typical": statistics.idf.typical,
        "names": sorted(statistics.names),
        "acronyms": {k: list(v) for k, v in statistics.acronyms.items()},
        "document_names": statistics.document_names,
        "document_words": statistics.document_words,
    }
    (folder / STATISTICS).write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (folder / LABELS).write_text(json.dumps(dict(statistics.labels), ensure_ascii=False, separators=(",", ":")),
                                 encoding="utf-8")
    flat = statistics.text.flat
    (folder / FLAT_TEXT).write_bytes(flat.encode("utf-8") if isinstance(flat, str) else bytes(flat))


def load(folder: Path, count: int) -> CorpusStatistics:
    """The statistics stored in an index folder of `count` paragraphs; an IndexStoreError
    naming the file when they are damaged."""
    path = folder / STATISTICS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        idf = grounding.Rarity({str(k): float(v) for k, v in data["idf"].items()})
        idf.typical = float(data["idf_typical"])
        statistics = CorpusStatistics(
            vocabulary=frozenset(map(str, data["vocabulary"])),
            words=frozenset(map(str, data["words"])),
            idf=idf,
            names=frozenset(map(str, data["names"])),
            acronyms={str(k): tuple(map(str, v)) for k, v in data["acronyms"].items()},
            document_names={str(k): str(v) for k, v in data["document_names"].items()},
            document_words={str(k): int(v) for k, v in data["document_words"].items()},
            labels=StoredLabels(folder / LABELS, count),
            text=grounding.FlatText(_mapped(folder / FLAT_TEXT)),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise IndexStoreError(f"{path} is corrupt: rebuild the index with `qa index`") from None
    return statistics


class StoredLabels(Mapping):
    """Label -> rows, read from the index on first use: a million labels take about a second
    to parse, and only a question that names a paragraph ("What does ¶5 say?") needs them."""

    def __init__(self, path: Path, count: int):
        self.path, self.count = path, count
        self._labels: dict[str, list[int]] | None = None

    def _read(self) -> dict[str, list[int]]:
        if self._labels is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                labels = {str(k): [int(r) for r in rows] for k, rows in data.items()}
            except (OSError, ValueError, TypeError, AttributeError, RecursionError):
                raise IndexStoreError(f"{self.path} is corrupt: rebuild the index with `qa index`") from None
            if any(not 0 <= row < self.count for rows in labels.values() for row in rows):
                raise IndexStoreError(
                    f"{self.path} is corrupt (a label points past the paragraphs): rebuild the index with `qa index`")
            self._labels = labels
        return self._labels

    def __getitem__(self, label: str) -> list[int]:
        return self._read()[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def _mapped(path: Path) -> bytes | mmap.mmap:
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
