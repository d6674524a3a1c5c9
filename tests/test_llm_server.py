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
        ready = server.stderr.readline()  # one line once /health answers (or an error line)
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
