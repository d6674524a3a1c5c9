"""Uploads of one browser session, kept to that session, for a server open to the network.

On loopback (`qa serve`) the chat has one user, the person at the machine, and a document
added on the page joins the shared index. With `--network` anyone who reaches the port can
upload, and a shared upload changes every other visitor's answers (the probe that started
this: a file named like the bundled document replaced its 19 paragraphs with one poisoned
one, for everyone). So there each session that uploads gets an index of its own: the shared
index's files hard-linked into a folder of the session's (builds never write a file in place
— they swap in a new folder — so the links cannot change under the shared index), plus its
uploads, embedded alone (the shared paragraphs' vectors are reused). That session's questions
are answered from it; every other session's from the shared one, unchanged.

A private index lives as long as its page: it is deleted when the session ends (the page is
closed) and, for sessions a crash or a dropped connection left behind, at the next start. At
most `Limits.private_sessions` exist at once, since each holds its index in memory. An
operator makes a document shared for everyone with `qa index --add FILE` (then restarts the
server).

No gradio here; qa/ui.py passes the session id in.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path
from typing import Callable

from .errors import QAError
from .service import Service, _quiet
from .store import MANIFEST, ParagraphIndex


class SessionService(Service):
    """A service over a session's own index, with the shared service's models (loaded once)."""

    def __init__(self, shared: Service, index_path: Path):
        super().__init__(index_path=index_path, settings=shared.settings, limits=shared.limits)
        self.shared = shared

    @property
    def embedder(self):
        return self.shared.embedder

    def generator(self, progress=_quiet):
        return self.shared.generator(progress)

    @property
    def generation_concurrency(self) -> int:
        return self.shared.generation_concurrency

    @property
    def generator_loaded(self) -> bool:
        return self.shared.generator_loaded


class PrivateUploads:
    """The sessions that uploaded something, each with its own index under `root`."""

    def __init__(self, shared: Service, root: Path):
        self.shared, self.root = shared, Path(root)
        self._sessions: dict[str, SessionService] = {}
        self._lock = threading.Lock()
        # Folders of an earlier run: their pages are gone with it.
        shutil.rmtree(self.root, ignore_errors=True)

    def service(self, session: str | None) -> Service:
        """The service a session's questions go to: its own if it uploaded, else the shared one."""
        with self._lock:
            return self._sessions.get(session or "", self.shared)

    def files_dir(self, session: str) -> Path:
        """Where a session's uploaded files are copied before they are indexed."""
        return self._folder(session) / "files"

    def add(self, session: str, paths: list[Path], progress: Callable[[int, int], None] | None = None) -> ParagraphIndex:
        """Index the files into the session's own index (made on its first upload); never replaces."""
        with self._lock:
            service = self._sessions.get(session)
            if service is None and len(self._sessions) >= self.shared.limits.private_sessions:
                raise QAError(f"the server already keeps the uploads of {len(self._sessions)} other visitors, "
                              f"its limit: try again later")
        created = service is None
        if created:
            folder = self._folder(session)
            index_path = folder / "index"
            shutil.rmtree(index_path, ignore_errors=True)
            if (self.shared.index_path / MANIFEST).exists():
                self.shared.index  # a damaged shared index fails here, in one line, not half-copied
                _link_tree(self.shared.index_path, index_path)
            service = SessionService(self.shared, index_path)
        try:
            index = service.add_documents(paths, progress, replace=False)
        except BaseException:
            if created:
                shutil.rmtree(service.index_path, ignore_errors=True)
            raise
        with self._lock:
            self._sessions[session] = service
        return index

    def end(self, session: str | None) -> None:
        """The session is over: its index and files go."""
        with self._lock:
            self._sessions.pop(session or "", None)
        if session:
            shutil.rmtree(self._folder(session), ignore_errors=True)

    @property
    def count(self) -> int:
        return len(self._sessions)

    def _folder(self, session: str) -> Path:
        # Gradio's session hashes are random letters and digits; anything else is made so.
        return self.root / (re.sub(r"[^A-Za-z0-9_-]", "-", session)[:64] or "session")


def _link_tree(source: Path, target: Path) -> None:
    """A copy of a folder whose files are hard links (a plain copy across file systems)."""

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)
