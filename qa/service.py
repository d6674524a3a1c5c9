"""One object the entry points share: models loaded once, the index, the answerer.

The CLI, the web app and the evaluator all go through `Service`, so they run the same
pipeline. Models load on first use; `add_documents` re-indexes and swaps the new index in
without a restart (the old one keeps serving until the new one is complete).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

from . import config
from .answer import Answerer, AnswerSettings
from .documents import load_documents
from .errors import DocumentError, IndexStoreError
from .store import OutdatedIndexError, ParagraphIndex, build_index, load_index

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


class Service:
    def __init__(self, index_path: Path | None = None, embedder_path: Path | None = None,
                 generator_path: Path | None = None, settings: AnswerSettings | None = None,
                 embedder=None, generator=None):
        self.index_path = Path(index_path or config.index_dir())
        self.embedder_path = embedder_path
        self.generator_path = generator_path
        self.settings = settings or AnswerSettings()
        self._embedder = embedder
        self._generator = generator
        self._index: ParagraphIndex | None = None
        self._answerers: dict[AnswerSettings, Answerer] = {}  # per settings, for this index
        self._lock = threading.RLock()  # guards loading and index swaps

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
        with self._lock:
            self._index = build_index(documents, self.embedder, self.index_path, progress)
            self._answerers.clear()
            return self._index

    def source_paths(self) -> list[Path]:
        try:
            return [Path(s["path"]) for s in self.index.manifest.get("sources", [])]
        except IndexStoreError:
            return []

    def add_documents(self, paths: list[Path], progress: Callable[[int, int], None] | None = None) -> ParagraphIndex:
        """Index the current sources plus new files; same-named files replace older copies."""
        new = [Path(p) for p in paths]
        if not new:
            raise DocumentError("no documents given")
        names = {p.name for p in new}
        kept = [p for p in self.source_paths() if p.name not in names and p.exists()]
        return self.build(kept + new, progress)

    # ------------------------------------------------------------------ answers

    def answerer(self, progress: Progress = _quiet, **overrides) -> Answerer:
        settings = replace(self.settings, **overrides) if overrides else self.settings
        generator = self.generator(progress)
        with self._lock:
            if settings not in self._answerers:
                self._answerers[settings] = Answerer(self.index, generator, settings)
            return self._answerers[settings]

    def retriever(self, **overrides) -> Answerer:
        """An answerer that can retrieve but not generate: no 1 GB model load for retrieval-only work."""
        settings = replace(self.settings, **overrides) if overrides else self.settings
        return Answerer(self.index, None, settings)
