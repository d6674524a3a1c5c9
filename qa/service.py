"""One object the entry points share: models loaded once, the index, the answerer.

The CLI, the web app and the evaluator all go through `Service`, so they run the same
pipeline. Models load on first use; `add_documents` re-indexes and swaps the new index in
without a restart (the old one keeps serving until the new one is complete). It never
replaces a document unless asked to, and never drops one.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

from . import config
from .answer import Answerer, AnswerSettings
from .deadline import TimeLimited
from .documents import document_id, expand_paths, load_document, load_documents
from .errors import DocumentError, DuplicateDocumentError, IndexStoreError
from .limits import Limits
from .store import MANIFEST, OutdatedIndexError, ParagraphIndex, build_index, load_index, stored_copy

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


class Service:
    def __init__(self, index_path: Path | None = None, embedder_path: Path | None = None,
                 generator_path: Path | None = None, settings: AnswerSettings | None = None,
                 embedder=None, generator=None, limits: Limits | None = None,
                 llm_url: str | None = None, llm_model: str | None = None, llm_timeout: float | None = None):
        self.index_path = Path(index_path or config.index_dir())
        self.embedder_path = embedder_path
        self.generator_path = generator_path
        self.settings = settings or AnswerSettings()
        self.limits = limits or Limits()  # caps the edges check before calling in here
        self._embedder = embedder
        self._generator = generator
        if generator is None and llm_url:
            # A server backend instead of the in-process model. Made now, not on first use: it
            # connects only when asked to generate, and the evaluator hands `_generator` on.
            from .backends import DEFAULT_TIMEOUT_S, OpenAIBackend

            self._generator = OpenAIBackend(llm_url, llm_model, timeout=llm_timeout or DEFAULT_TIMEOUT_S)
        self._index: ParagraphIndex | None = None
        self._answerers: dict[AnswerSettings, Answerer] = {}  # per settings, for this index
        self._lock = threading.RLock()  # guards loading and index swaps
        self.warnings: list[str] = []  # about the documents of the last build or add (very long lines)

    # ------------------------------------------------------------------ models

    @property
    def embedder(self):
        with self._lock:
            if self._embedder is None:
                from .models import Embedder

                self._embedder = Embedder(self.embedder_path)
            return self._embedder

    def generator(self, progress: Progress = _quiet):
        with self._lock:
            if self._generator is None:
                from .models import Generator

                self._generator = Generator(self.generator_path, progress=progress)
            return self._generator

    @property
    def generation_concurrency(self) -> int:
        """How many questions the web app lets generate at once: one for the in-process model
        (it is not re-entrant), the server's slots plus its queue for a server backend, whose
        own limits then refuse the excess with a "busy, retry" message."""
        generator = self._generator
        slots, queue = getattr(generator, "slots", None), getattr(generator, "queue", 0)
        return slots + queue if isinstance(slots, int) else 1

    @property
    def generator_loaded(self) -> bool:
        return self._generator is not None

    # ------------------------------------------------------------------ index

    @property
    def index(self) -> ParagraphIndex:
        with self._lock:
            if self._index is None:
                try:
                    self._index = load_index(self.index_path, self.embedder)
                except OutdatedIndexError as outdated:
                    # An index from before a format change is rebuilt from its own sources,
                    # once, saying so; if a source is gone the error says how to rebuild.
                    if not outdated.sources or not all(p.exists() for p in outdated.sources):
                        raise
                    import sys

                    print(f"{outdated}; rebuilding it now from its {len(outdated.sources)} document(s)",
                          file=sys.stderr)
                    self._index = build_index(load_documents(outdated.sources), self.embedder, self.index_path)
            return self._index

    def build(self, paths: list[Path], progress: Callable[[int, int], None] | None = None) -> ParagraphIndex:
        documents = load_documents(paths)  # all-or-nothing: a bad file stops before any write
        self.warnings = [w for d in documents for w in d.warnings]
        with self._lock:
            self._index = build_index(documents, self.embedder, self.index_path, progress)
            self._answerers.clear()
            return self._index

    def source_paths(self) -> list[Path]:
        try:
            return [Path(s["path"]) for s in self.index.manifest.get("sources", [])]
        except IndexStoreError:
            return []

    def add_documents(self, paths: list[Path], progress: Callable[[int, int], None] | None = None,
                      replace: bool = False) -> ParagraphIndex:
        """Index new files next to the current documents, and swap the new index in.

        Nothing is replaced or dropped silently: a new file named like an indexed document
        raises DuplicateDocumentError unless `replace` is true, and the documents already
        indexed are re-read from the index's own copies, so one whose file has moved or
        vanished stays. The new index's manifest["changes"] lists what was added and
        replaced.
        """
        new_paths = expand_paths([Path(p) for p in paths])  # folders give their files
        if not new_paths:
            raise DocumentError("no documents given")
        names = [p.name for p in new_paths]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise DocumentError(f"two of the new files are named {', '.join(twice)}: rename one")
        with self._lock:
            sources = self._current_sources()
            clashing = [s["name"] for s in sources if s["name"] in names]
            if clashing and not replace:
                raise DuplicateDocumentError(clashing)
            kept, origins = [], {}
            for source in sources:
                if source["name"] not in names:
                    kept.append(load_document(self._source_file(source), source["doc_id"]))
                    origins[source["doc_id"]] = source["path"]  # where it came from, not the copy
            taken = {d.doc_id for d in kept}
            added = []
            for path in new_paths:
                doc_id = document_id(path, taken)  # a replacement takes the freed id: citations stay
                taken.add(doc_id)
                added.append(load_document(path, doc_id))
            self.warnings = [w for d in added for w in d.warnings]
            self._index = build_index(kept + added, self.embedder, self.index_path, progress, origins)
            self._answerers.clear()
            return self._index

    def _current_sources(self) -> list[dict]:
        if not (self.index_path / MANIFEST).exists() and not self.index_path.with_name(f".{self.index_path.name}.old").exists():
            return []  # no index yet: adding builds the first one
        return self.index.manifest["sources"]  # a damaged index raises: never drop it silently

    def _source_file(self, source: dict) -> Path:
        """The index's copy of an indexed document, else its original file if still there."""
        copy = stored_copy(self.index_path, source)
        if copy is not None:
            return copy
        original = Path(source["path"])
        if original.is_file():
            return original  # an index from before copies were kept
        raise IndexStoreError(
            f"{source['name']}: its file {original} is gone and this index has no copy of it: rebuild "
            f"the index with `qa index`, giving the document's new location"
        )

    # ------------------------------------------------------------------ answers

    def answerer(self, progress: Progress = _quiet, **overrides) -> Answerer:
        settings = replace(self.settings, **overrides) if overrides else self.settings
        generator = self.generator(progress)
        with self._lock:
            if settings not in self._answerers:
                # Each answer's generation stops after the limit's seconds (the model freed).
                timed = TimeLimited(generator, self.limits.generation_timeout_s)
                self._answerers[settings] = Answerer(self.index, timed, settings)
            return self._answerers[settings]

    def retriever(self, **overrides) -> Answerer:
        """An answerer that can retrieve but not generate: no 1 GB model load for retrieval-only work."""
        settings = replace(self.settings, **overrides) if overrides else self.settings
        return Answerer(self.index, None, settings)
