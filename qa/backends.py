"""Generation backends other than the in-process model: an OpenAI-compatible HTTP server.

`OpenAIBackend` has the one interface the pipeline uses (`name`, `stream(messages,
max_new_tokens)`), so the grounding pipeline runs unchanged on llama.cpp's server, vLLM,
Ollama or any server with `/v1/chat/completions`. It streams (server-sent events), decodes
greedily (temperature 0) and never waits longer than its timeout for a byte, nor longer than
its deadline for a whole answer.

Every failure is one ModelError line naming the server: down (connection refused), too slow
(timeout), busy (HTTP 429/503: ServerBusyError, "retry"), any other HTTP error, or a reply
that is not a chat-completion stream. Nothing here hangs and nothing is retried silently.

Queue limits are explicit: at most `slots` questions are sent to the server at once (its
parallel slots: more would only queue inside it, out of sight), at most `queue` more wait
here, each for at most `queue_timeout` seconds; a question past either limit is refused at
once with ServerBusyError ("busy, retry in a moment") instead of waiting without end.

Standard library only (http.client): no new dependency for a feature most users never turn on.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from typing import Iterator
from urllib.parse import urlsplit

from .errors import ModelError, ServerBusyError

API_KEY_ENV = "QA_LLM_API_KEY"  # never a flag: a key on the command line shows in `ps`
# Longest wait for any byte. A llama.cpp server on 2 busy cores takes ~2 s to the first
# token of a 545-token prompt, and a queued request waits for a free slot first: 60 s is
# generous for that and still turns a stuck server into a message within a minute.
DEFAULT_TIMEOUT_S = 60.0
# Longest whole answer: the pipeline asks for at most a few dozen tokens; a server that keeps
# trickling bytes past this is broken, and the user is told instead of waiting for ever.
DEFAULT_DEADLINE_S = 300.0
MAX_LINE_BYTES = 1 << 20  # one SSE line; a server sending more without a newline is garbage
DEFAULT_SLOTS = 4  # = llm_server.DEFAULT_PARALLEL, the slots `make serve-llm` starts
# Waiting questions: at ~1-3 s an answer per slot, 16 waiting behind 4 slots is ~10 s of wait
# at worst; a longer queue only makes people wait for an answer they will have given up on.
DEFAULT_QUEUE = 16


class OpenAIBackend:
    """Streams chat completions from an OpenAI-compatible server (`base_url` ends in /v1)."""

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, deadline: float = DEFAULT_DEADLINE_S,
                 slots: int = DEFAULT_SLOTS, queue: int = DEFAULT_QUEUE, queue_timeout: float | None = None):
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelError(f"--llm-url must look like http://127.0.0.1:8080/v1, not {base_url!r}")
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ModelError(f"--llm-url has a bad port: {base_url!r}") from None
        self.url = base_url.rstrip("/")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.path = parts.path.rstrip("/") + "/chat/completions"
        # A server with one model (llama.cpp) ignores the name; others need it.
        self.model = model or "default"
        self.name = model or f"server at {self.url}"
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.timeout, self.deadline = float(timeout), float(deadline)
        if slots < 1 or queue < 0:
            raise ModelError("the server backend needs at least one slot and a queue of zero or more")
        self.slots, self.queue = int(slots), int(queue)
        self.queue_timeout = float(self.timeout if queue_timeout is None else queue_timeout)
        self._free = threading.Semaphore(self.slots)
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    # ------------------------------------------------------------------ the interface

    def stream(self, messages: list[dict], max_new_tokens: int = 120) -> Iterator[str]:
        """Yield the answer's text pieces as the server sends them (once a slot is free)."""
        self._take_slot()
        try:
            yield from self._stream(messages, max_new_tokens)
        finally:
            self._free.release()

    def _take_slot(self) -> None:
        if self._free.acquire(blocking=False):
            return
        with self._waiting_lock:
            if self._waiting >= self.queue:
                raise ServerBusyError(f"the model server is busy ({self.slots} questions being answered, "
                                      f"{self._waiting} waiting): retry in a moment")
            self._waiting += 1
        try:
            if not self._free.acquire(timeout=self.queue_timeout):
                raise ServerBusyError(f"the model server is busy (no free slot within {self.queue_timeout:g} s): "
                                      f"retry in a moment")
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def _stream(self, messages: list[dict], max_new_tokens: int) -> Iterator[str]:
        body = json.dumps({
            "model": self.model, "messages": messages, "max_tokens": int(max_new_tokens),
            "temperature": 0, "stream": True,  # greedy, as the in-process generator
        }).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        started = time.monotonic()
        connection_class = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(self.host, self.port, timeout=self.timeout)
        try:
            try:
                connection.request("POST", self.path, body=body, headers=headers)
                # The response keeps reading this socket after a "Connection: close" reply
                # detaches it from the connection; kept to set its timeout per line.
                sock = connection.sock
                response = connection.getresponse()
            except (socket.timeout, TimeoutError):
                raise ModelError(f"the model server at {self.url} did not answer within {self.timeout:g} s") from None
            except ConnectionRefusedError:
                raise ModelError(f"the model server at {self.url} is not running (connection refused): "
                                 f"start it (`make serve-llm`) or fix --llm-url") from None
            except (OSError, http.client.HTTPException) as error:
                raise ModelError(f"cannot reach the model server at {self.url}: {_describe(error)}") from None
            if response.status != 200:
                raise self._http_error(response)
            kind = response.getheader("Content-Type", "")
            if "text/event-stream" in kind:
                yield from self._events(sock, response, started)
            else:  # a server that ignores "stream": one JSON body is still a valid answer
                yield self._whole(response)
        finally:
            connection.close()  # also when the caller stops early: the server stops generating

    # ------------------------------------------------------------------ reading the reply

    def _events(self, sock, response, started: float) -> Iterator[str]:
        finished = False
        while True:
            line = self._readline(sock, response, started)
            if line is None:
                break  # connection closed
            line = line.strip()
            if not line or line.startswith(":"):
                continue  # keep-alive comments and event separators
            if not line.startswith("data:"):
                if line.startswith(("event:", "id:", "retry:")):
                    continue
                raise self._garbage(f"unexpected line {line[:60]!r}")
            data = line[5:].strip()
            if data == "[DONE]":
                return
            event = self._json(data)
            if isinstance(event, dict) and "error" in event:
                raise ModelError(f"the model server at {self.url} failed mid-answer: {_error_text(event['error'])}")
            choice = _first_choice(event)
            if choice is None:
                raise self._garbage("an event without choices")
            piece = (choice.get("delta") or {}).get("content")
            if piece is not None and not isinstance(piece, str):
                raise self._garbage("a delta whose content is not text")
            if piece:
                yield piece
            if choice.get("finish_reason"):
                finished = True  # some servers close without [DONE] after this
        if not finished:
            raise ModelError(f"the model server at {self.url} closed the connection mid-answer")

    def _readline(self, sock, response, started: float) -> str | None:
        # The socket's timeout is the shorter of the per-byte timeout and what is left of the
        # deadline, so a server trickling one byte a minute is cut off at the deadline too.
        remaining = self.deadline - (time.monotonic() - started)
        if remaining <= 0:
            raise ModelError(f"the model server at {self.url} took over {self.deadline:g} s for one answer")
        sock.settimeout(min(self.timeout, remaining))
        try:
            raw = response.readline(MAX_LINE_BYTES + 1)
        except (socket.timeout, TimeoutError):
            if self.timeout >= remaining:
                raise ModelError(f"the model server at {self.url} took over {self.deadline:g} s for one answer") from None
            raise ModelError(f"the model server at {self.url} stopped sending for {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:
            raise ModelError(f"the connection to the model server at {self.url} broke: {_describe(error)}") from None
        if not raw:
            return None
        if len(raw) > MAX_LINE_BYTES:
            raise self._garbage("a line over 1 MB")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._garbage("bytes that are not UTF-8") from None

    def _whole(self, response) -> str:
        try:
            data = response.read(16 * MAX_LINE_BYTES)
        except (socket.timeout, TimeoutError):
            raise ModelError(f"the model server at {self.url} stopped sending for {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:
            raise ModelError(f"the connection to the model server at {self.url} broke: {_describe(error)}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise self._garbage("bytes that are not UTF-8") from None
        choice = _first_choice(self._json(text))
        content = ((choice or {}).get("message") or {}).get("content")
        if not isinstance(content, str):
            raise self._garbage("no choices[0].message.content")
        return content

    def _json(self, text: str):
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise self._garbage(f"not JSON: {text.strip()[:60]!r}") from None

    def _garbage(self, what: str) -> ModelError:
        return ModelError(f"the model server at {self.url} sent something that is not a chat completion ({what})")

    def _http_error(self, response) -> ModelError:
        try:
            body = response.read(4096).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            body = ""
        detail = body.strip()
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict) and "error" in parsed:
                detail = _error_text(parsed["error"])
        except (json.JSONDecodeError, RecursionError):
            pass
        detail = (detail.splitlines() or [""])[0][:200]
        if response.status in (429, 503):
            return ServerBusyError(f"the model server is busy (HTTP {response.status}): retry in a moment")
        if response.status in (401, 403):
            return ModelError(f"the model server at {self.url} refused the key (HTTP {response.status}): "
                              f"set {API_KEY_ENV}")
        return ModelError(f"the model server at {self.url} answered HTTP {response.status}"
                          + (f": {detail}" if detail else ""))


def _first_choice(event) -> dict | None:
    choices = event.get("choices") if isinstance(event, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    return choices[0]


def _error_text(error) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)[:200]
    return str(error)[:200]


def _describe(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
