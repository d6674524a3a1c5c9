"""The local llama.cpp server (qa/llm_server.py): its choices, fast; the real thing, slow.

The slow test starts `python -m qa.llm_server` on a free loopback port with the shipped GGUF
and answers a question through `qa ask --llm-url`, with a citation. It is skipped where the
optional extra (xllamacpp) is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from qa import llm_server
from qa.errors import ModelError

from .conftest import REPO


def test_threads_leave_room_on_a_small_machine(monkeypatch):
    monkeypatch.delenv("QA_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert llm_server.default_threads() == 1  # 2 threads on 2 busy cores collapse (MODELS.md)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert llm_server.default_threads() == 8
    monkeypatch.setenv("QA_THREADS", "3")
    assert llm_server.default_threads() == 3


def test_missing_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # import fails as if not installed
    with pytest.raises(ModelError, match=r"\.\[server\]"):
        llm_server._xllamacpp()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="optional extra: pip install -e '.[server]'")
def test_real_server_answers_through_qa_ask(tmp_path):
    port = _free_port()
    env = {**os.environ, "QA_THREADS": os.environ.get("QA_THREADS", "1")}
    server = subprocess.Popen([sys.executable, "-m", "qa.llm_server", "--port", str(port), "--parallel", "2"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Progress lines first (a first start assembles the GGUF from its packages), then one
        # line once /health answers, or an error line.
        ready = server.stderr.readline()
        while ready and "ready" not in ready and "error" not in ready:
            ready = server.stderr.readline()
        assert "ready" in ready and f"127.0.0.1:{port}" in ready, ready
        url = f"http://127.0.0.1:{port}/v1"
        index = tmp_path / "index"
        run = lambda *a: subprocess.run([sys.executable, "-m", "qa.cli", "--index", str(index), *a],  # noqa: E731
                                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        built = run("index")
        assert built.returncode == 0, built.stderr
        started = time.perf_counter()
        asked = run("ask", "Which countries led the initiative on veto restraint?", "--llm-url", url, "--json")
        assert asked.returncode == 0, asked.stderr
        answer = json.loads(asked.stdout)
        assert "France" in answer["answer"] and "Mexico" in answer["answer"]
        assert [c["label"] for c in answer["citations"]] == ["¶11"]
        assert "[¶11]" in answer["answer"]
        assert time.perf_counter() - started < 120
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0  # stopped cleanly on SIGTERM


class _FakeXllamacpp:
    """Stands in for xllamacpp: records the parameters and serves /health on loopback."""

    def __init__(self, healthy=True):
        import types

        self.started = []
        fake = self

        class Params:
            def __init__(self):
                self.model = types.SimpleNamespace(path=None)
                self.cpuparams = types.SimpleNamespace(n_threads=0)
                self.cpuparams_batch = types.SimpleNamespace(n_threads=0)
                self.sampling = types.SimpleNamespace(penalty_repeat=1.0)

        class Server:
            def __init__(self, params):
                from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
                import threading

                class Health(BaseHTTPRequestHandler):
                    def log_message(self, *args):
                        pass

                    def do_GET(self):
                        self.send_response(200 if healthy and self.path == "/health" else 503)
                        self.end_headers()

                fake.started.append(params)
                self.http = ThreadingHTTPServer((params.hostnames[0], params.port), Health)
                threading.Thread(target=self.http.serve_forever, daemon=True).start()

            def __del__(self):
                self.http.shutdown()
                self.http.server_close()

        self.CommonParams, self.Server = Params, Server


def test_start_passes_the_machine_choices_and_waits_for_health(monkeypatch, tmp_path):
    fake = _FakeXllamacpp()
    monkeypatch.setattr(llm_server, "_xllamacpp", lambda: fake)
    monkeypatch.setenv("QA_THREADS", "1")
    port = _free_port()
    server, url = llm_server.start(tmp_path / "m.gguf", port=port, parallel=3)
    params = fake.started[0]
    assert url == f"http://127.0.0.1:{port}/v1"
    assert params.hostnames == ["127.0.0.1"] and params.model.path == str(tmp_path / "m.gguf")
    assert params.cpuparams.n_threads == params.cpuparams_batch.n_threads == 1
    assert params.n_parallel == 3 and params.n_ctx == 3 * llm_server.CONTEXT_PER_SLOT
    assert params.sampling.penalty_repeat == llm_server.REPETITION_PENALTY
    del server


def test_a_server_that_never_gets_healthy_is_one_error(monkeypatch, tmp_path):
    fake = _FakeXllamacpp(healthy=False)
    monkeypatch.setattr(llm_server, "_xllamacpp", lambda: fake)
    monkeypatch.setattr(llm_server, "READY_TIMEOUT_S", 0.5)
    with pytest.raises(ModelError, match="did not become ready"):
        llm_server.start(tmp_path / "m.gguf", port=_free_port())
