"""The OpenAI-compatible backend against a tiny fake server on 127.0.0.1 (stdlib, in a thread).

Each test tells the fake server how to behave (stream, stall, send garbage, fail, be busy),
and checks that the backend streams the text or fails with one ModelError line, quickly.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qa import cli
from qa.backends import OpenAIBackend
from qa.errors import ModelError, ServerBusyError
from qa.service import Service

from .conftest import DOC, SEED, FakeEmbedder

STALL_S = 1.5  # how long the stalling server keeps silent: past every timeout the tests set
ANSWER = "France and Mexico led the initiative on veto restraint [¶11]."


class FakeServer:
    """An OpenAI-compatible server whose behaviour a test sets: `mode` and `reply`."""

    def __init__(self):
        self.mode = "stream"
        self.reply = ANSWER
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests.append(json.loads(body))
                fake.headers.append(dict(self.headers))
                getattr(self, f"_{fake.mode}")()

            def _send(self, status, kind, data: bytes, close=True):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if close:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            def _events(self, events, done=True):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for event in events:
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                if done:
                    self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _stream(self):
                words = fake.reply.split(" ")
                pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
                events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
                events += [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
                events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self.wfile.write(b"")
                self._events(events)

            def _whole(self):  # a server that ignores "stream"
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": fake.reply}}]})
                self._send(200, "application/json", data.encode())

            def _stall(self):  # headers, then nothing for longer than the client's timeout
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(b'data: {"choices": [{"delta": {"content": "France"}}]}\n\n')
                self.wfile.flush()
                time.sleep(STALL_S)
                self.close_connection = True

            def _silent(self):  # not even the headers
                time.sleep(STALL_S)
                self.close_connection = True

            def _garbage(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(b"data: <html>oops</html>\n\n")
                self.close_connection = True

            def _no_choices(self):
                self._events([{"object": "chat.completion.chunk"}])

            def _html(self):
                self._send(200, "text/html", b"<html><body>a proxy login page</body></html>")

            def _cut(self):  # closes mid-answer, no finish_reason, no [DONE]
                self._events([{"choices": [{"delta": {"content": "France and"}}]}], done=False)

            def _error(self):
                self._send(500, "application/json", json.dumps({"error": {"message": "model crashed\nstack"}}).encode())

            def _busy(self):
                self._send(503, "application/json", json.dumps({"error": {"message": "no slot available"}}).encode())

            def _unauthorised(self):
                self._send(401, "application/json", b'{"error": {"message": "Invalid API Key"}}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MESSAGES = [{"role": "system", "content": "Passages: ..."}, {"role": "user", "content": "Who led it?"}]


def test_streams_pieces_greedily(server, monkeypatch):
    monkeypatch.setenv("QA_LLM_API_KEY", "sekret")
    backend = OpenAIBackend(server.url, "qwen")
    pieces = list(backend.stream(MESSAGES, 40))
    assert len(pieces) > 3 and "".join(pieces) == ANSWER
    request = server.requests[0]
    assert request["stream"] is True and request["temperature"] == 0 and request["max_tokens"] == 40
    assert request["model"] == "qwen" and request["messages"] == MESSAGES
    assert server.headers[0]["Authorization"] == "Bearer sekret"


def test_no_key_sends_no_authorization(server, monkeypatch):
    monkeypatch.delenv("QA_LLM_API_KEY", raising=False)
    assert "".join(OpenAIBackend(server.url).stream(MESSAGES)) == ANSWER
    assert "Authorization" not in server.headers[0]


def test_a_non_streamed_reply_is_accepted(server):
    server.mode = "whole"
    assert "".join(OpenAIBackend(server.url).stream(MESSAGES)) == ANSWER


def _fails(backend, match: str, within: float = 2.5) -> str:
    started = time.monotonic()
    with pytest.raises(ModelError, match=match) as caught:
        list(backend.stream(MESSAGES))
    assert time.monotonic() - started < within  # nothing hangs
    message = str(caught.value)
    assert "\n" not in message and backend.url in message or "busy" in message
    return message


def test_down_server():
    _fails(OpenAIBackend(f"http://127.0.0.1:{_free_port()}/v1"), "not running")


@pytest.mark.parametrize("mode", ["stall", "silent"])
def test_timeout(server, mode):
    server.mode = mode
    _fails(OpenAIBackend(server.url, timeout=0.5), "0.5 s")


def test_deadline_for_a_whole_answer(server):
    server.mode = "stall"
    # Each byte comes within the timeout, but the answer as a whole takes too long.
    backend = OpenAIBackend(server.url, timeout=5, deadline=0.5)
    started = time.monotonic()
    with pytest.raises(ModelError, match="took over 0.5 s"):
        list(backend.stream(MESSAGES))
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("mode, match", [("garbage", "not JSON"), ("no_choices", "without choices"),
                                         ("html", "not JSON"), ("cut", "mid-answer")])
def test_garbage(server, mode, match):
    server.mode = mode
    _fails(OpenAIBackend(server.url), match)


def test_http_error_is_one_line(server):
    server.mode = "error"
    message = _fails(OpenAIBackend(server.url), "HTTP 500: model crashed")
    assert "stack" not in message


def test_busy_says_retry(server):
    server.mode = "busy"
    with pytest.raises(ServerBusyError, match="busy.*retry"):
        list(OpenAIBackend(server.url).stream(MESSAGES))


def test_bad_key(server):
    server.mode = "unauthorised"
    _fails(OpenAIBackend(server.url), "QA_LLM_API_KEY")


@pytest.mark.parametrize("url", ["127.0.0.1:8080/v1", "ftp://x/v1", "http:///v1", "http://h:notaport/v1"])
def test_bad_url(url):
    with pytest.raises(ModelError, match="--llm-url"):
        OpenAIBackend(url)


# --------------------------------------------------------------------------- through the pipeline


@pytest.fixture
def service(tmp_path, server):
    svc = Service(index_path=tmp_path / "ix", embedder=FakeEmbedder(), llm_url=server.url)
    svc.build([SEED])
    return svc


def test_pipeline_answers_through_the_server(service, server):
    answer = service.answerer().ask("Which countries led the initiative on veto restraint?")
    assert not answer.abstained
    assert "France and Mexico" in answer.text
    assert any(c.id.startswith(DOC) for c in answer.citations)
    assert server.requests and server.requests[0]["messages"][0]["role"] == "system"


def test_cli_ask_with_llm_url(service, server, monkeypatch, capsys):
    seen = {}

    def make(args):
        seen["url"] = args.llm_url
        return service

    monkeypatch.setattr(cli, "_service", make)
    assert cli.main(["ask", "Which countries led the initiative on veto restraint?", "--llm-url", server.url]) == 0
    out = capsys.readouterr().out
    assert seen["url"] == server.url and "France and Mexico" in out and "[¶11]" in out


@pytest.mark.parametrize("mode", ["down", "garbage", "busy"])
def test_cli_gives_one_line(tmp_path, server, monkeypatch, capsys, mode):
    url = f"http://127.0.0.1:{_free_port()}/v1" if mode == "down" else server.url
    server.mode = mode
    svc = Service(index_path=tmp_path / "ix", embedder=FakeEmbedder(), llm_url=url)
    svc.build([SEED])
    monkeypatch.setattr(cli, "_service", lambda args: svc)
    capsys.readouterr()
    assert cli.main(["ask", "Which countries led the initiative on veto restraint?", "--llm-url", url]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa ask: error: ") and captured.out == ""


def test_cli_builds_the_backend_from_flags(tmp_path):
    args = cli.build_parser().parse_args(["--index", str(tmp_path), "ask", "q", "--llm-url", "http://127.0.0.1:9/v1",
                                          "--llm-model", "m", "--llm-timeout", "7"])
    backend = cli._service(args)._generator
    assert isinstance(backend, OpenAIBackend)
    assert (backend.url, backend.model, backend.timeout) == ("http://127.0.0.1:9/v1", "m", 7.0)


@pytest.mark.parametrize("argv", [["ask", "q", "--llm-url", "http://h/v1", "--model", "qwen-1.5b"],
                                  ["ask", "q", "--llm-model", "m"], ["serve", "--llm-url", "http://h/v1", "--llm-timeout", "0"]])
def test_cli_refuses_bad_combinations(argv):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2


def test_chat_shows_one_line(tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    from qa.ui import ChatApp

    svc = Service(index_path=tmp_path / "ix", embedder=FakeEmbedder(), llm_url=f"http://127.0.0.1:{_free_port()}/v1")
    svc.build([SEED])
    *_, (messages, _) = ChatApp(svc).chat("Which countries led the initiative on veto restraint?", [])
    last = messages[-1]["content"]
    assert last.startswith("✗ ") and "not running" in last and "\n" not in last


# --------------------------------------------------------------------------- queue limits


def _hold_a_slot(backend):
    """Start an answer that holds its slot (the server stalls) and return its thread."""
    started = threading.Event()

    def run():
        try:
            for _ in backend.stream(MESSAGES):
                started.set()
        except ModelError:
            pass
        started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5)
    return thread


def test_past_the_slots_and_queue_a_question_is_refused_at_once(server):
    server.mode = "stall"
    backend = OpenAIBackend(server.url, timeout=5, slots=1, queue=0)
    holder = _hold_a_slot(backend)
    started = time.monotonic()
    with pytest.raises(ServerBusyError, match="busy.*1 questions being answered.*retry"):
        list(backend.stream(MESSAGES))
    assert time.monotonic() - started < 0.5
    holder.join(10)
    server.mode = "stream"
    assert "".join(backend.stream(MESSAGES)) == ANSWER  # the slot was given back


def test_a_queued_question_waits_at_most_queue_timeout(server):
    server.mode = "stall"
    backend = OpenAIBackend(server.url, timeout=5, slots=1, queue=1, queue_timeout=0.3)
    holder = _hold_a_slot(backend)
    started = time.monotonic()
    with pytest.raises(ServerBusyError, match="no free slot within 0.3 s"):
        list(backend.stream(MESSAGES))
    assert 0.25 < time.monotonic() - started < 2
    holder.join(10)


def test_a_queued_question_is_answered_when_a_slot_frees(server):
    backend = OpenAIBackend(server.url, slots=2, queue=8)
    results, errors = [], []

    def ask():
        try:
            results.append("".join(backend.stream(MESSAGES)))
        except ModelError as error:
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and results == [ANSWER] * 8


def test_the_web_app_generates_as_many_at_once_as_the_backend_allows(tmp_path, server):
    from .conftest import ScriptedGenerator

    assert Service(index_path=tmp_path, generator=ScriptedGenerator("x")).generation_concurrency == 1
    backend = OpenAIBackend(server.url, slots=3, queue=5)
    assert Service(index_path=tmp_path, generator=backend).generation_concurrency == 8
