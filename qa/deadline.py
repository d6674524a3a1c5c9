"""A per-request time limit on generation, so one slow answer cannot hold the model for ever.

The web chat's questions take turns on one model (qa/gate.py): an answer that runs on —
a stalled server that still trickles bytes, a machine so loaded that 56 tokens take
minutes — keeps everyone behind it waiting. `TimeLimited` wraps a generator and stops its
stream once `seconds` have passed since the request began: the wrapped stream is closed at
once (which leaves the in-process model's lock, or closes a server's connection, so the slot
is free), and GenerationTimeout says so in one line at the edges.

The clock is read at each piece the generator yields (a token or a few): a single forward
pass is not interrupted, which the prompt's token budget (qa/budget.py) keeps to seconds.
"""

from __future__ import annotations

import time
from typing import Iterator

from .errors import GenerationTimeout


class TimeLimited:
    """A generator whose every `stream` call stops with GenerationTimeout after `seconds`."""

    def __init__(self, generator, seconds: float):
        self.generator, self.seconds = generator, float(seconds)
        self.name = getattr(generator, "name", "generator")

    def stream(self, messages: list[dict], max_new_tokens: int = 120) -> Iterator[str]:
        deadline = time.monotonic() + self.seconds
        pieces = self.generator.stream(messages, max_new_tokens)
        try:
            for piece in pieces:
                if time.monotonic() > deadline:
                    raise GenerationTimeout(
                        f"the answer was stopped after {self.seconds:g} s, the time limit for one answer "
                        f"(the machine may be busy): ask again in a moment")
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()  # frees the model (its lock, or a server's connection) now, not at garbage collection

    def __getattr__(self, name):  # count_tokens, slots, lock, ...: the wrapped generator's
        return getattr(self.generator, name)
