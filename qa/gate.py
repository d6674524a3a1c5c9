"""Who may use the model now: chat questions in arrival order, evaluations only in between.

One generator on two cores serves everyone, so questions take turns. `ModelGate` keeps the
chat's line itself (not Gradio's queue), so a waiting question can say where it stands
("1 question ahead of yours"). An evaluation is background work: it runs a question only
while no chat question is running or waiting, and `Preempting` makes its generator stop at
once one arrives (the evaluation then asks that question again): the in-process model stops
between two layers of its current forward pass, a server backend at its next token. A chat
question waits milliseconds for an evaluation, not a whole evaluation question.

No gradio here; qa/ui.py uses it.
"""

from __future__ import annotations

import inspect
import itertools
import threading
import time
from contextlib import contextmanager


class Preempted(Exception):
    """Background generation stopped because a chat question (or a cancel) needs the model."""


class ModelGate:
    def __init__(self, capacity: int = 1):
        self.capacity = max(1, int(capacity))  # questions that may generate at once
        self._cond = threading.Condition()
        self._line: list[int] = []  # tickets of chat questions, the one running first
        self._tickets = itertools.count(1)
        self._last_left = float("-inf")  # when the last chat question finished

    # -- chat questions

    def enter(self) -> int:
        with self._cond:
            ticket = next(self._tickets)
            self._line.append(ticket)
            self._cond.notify_all()
            return ticket

    def ahead(self, ticket: int) -> int:
        """How many chat questions are before this one (0: its turn)."""
        with self._cond:
            return max(0, self._line.index(ticket) - self.capacity + 1) if ticket in self._line else 0

    def wait_turn(self, ticket: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: ticket not in self._line[self.capacity:], timeout)

    def leave(self, ticket: int) -> None:
        with self._cond:
            if ticket in self._line:
                self._line.remove(ticket)
            self._last_left = time.monotonic()
            self._cond.notify_all()

    @contextmanager
    def turn(self, timeout: float | None = None):
        """Wait for this question's turn without progress reports (the /ask API)."""
        ticket = self.enter()
        try:
            while not self.wait_turn(ticket, 0.5 if timeout is None else timeout):
                pass
            yield
        finally:
            self.leave(ticket)

    # -- background work

    @property
    def chat_busy(self) -> bool:
        return bool(self._line)

    @property
    def waiting(self) -> int:
        """Chat questions in line, the running one included."""
        return len(self._line)

    def wait_idle(self, stop: threading.Event | None = None, poll: float = 0.2, quiet: float = 0.0) -> bool:
        """Block until no chat question runs or waits, and none has finished for `quiet`
        seconds; False if `stop` was set meanwhile."""
        with self._cond:
            while self._line or time.monotonic() - self._last_left < quiet:
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(poll)
        return not (stop is not None and stop.is_set())


class Preempting:
    """A generator wrapper for background work: it stops (raises Preempted) as soon as a chat
    question is in line or `stop` is set, at the next token (the in-process model: at its
    next layer), which frees the model's lock."""

    def __init__(self, generator, gate: ModelGate, stop: threading.Event):
        self.generator, self.gate, self.stop = generator, gate, stop
        self.name = getattr(generator, "name", "generator")

    def stream(self, messages, max_new_tokens: int = 120):
        if self.needed():
            raise Preempted()
        # The in-process generator also checks between the forward passes of its prompt, so a
        # chat question does not wait for a whole prompt to be read (qa/models.py).
        checks = {"interrupted": self.needed} if _accepts(self.generator.stream, "interrupted") else {}
        pieces = self.generator.stream(messages, max_new_tokens, **checks)
        try:
            for piece in pieces:
                if self.needed():
                    raise Preempted()
                yield piece
            if self.needed():
                raise Preempted()  # it stopped early for this (or just finished: asked again)
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()  # leaves the model's `with lock` block at once

    def needed(self) -> bool:
        """Does a chat question (or a cancel) need the model now?"""
        return self.gate.chat_busy or self.stop.is_set()

    def __getattr__(self, name):
        return getattr(self.generator, name)


def _accepts(function, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
