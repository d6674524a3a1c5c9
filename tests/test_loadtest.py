"""A bounded load test on loopback (qa/loadtest.py): 8 users x 3 questions against the served
app, no errors, p95 reported. Fast on fakes (the page's own server, tests/fake_server.py); the
same with the real models in `qa serve` is marked slow."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from qa import loadtest

from .conftest import REPO
from .test_ui import _free_port

USERS, PER_USER = 8, 3


def _wait_for(url: str, process, log, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the server did not start: " + log.read_text()[-2000:])


def _serve(command, root, env_extra, seconds):
    port = _free_port()
    log = root / "server.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "QA_UPLOADS": str(root / "uploads"), "PYTHONUNBUFFERED": "1",
           **env_extra}
    handle = open(log, "w")
    process = subprocess.Popen([sys.executable, *command(port)], cwd=REPO, env=env, stdout=handle,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for(url, process, log, seconds)
    except BaseException:
        process.terminate()
        raise
    return url, process, handle


def _questions():
    from qa.evaluate import DEFAULT_TESTSET, load_testset

    return [item.question for item in load_testset(DEFAULT_TESTSET) if item.answerable and not item.history]


def _report(result) -> str:
    return (f"{result['users']} users x {PER_USER} questions: {result['answered']} answered, {result['errors']} "
            f"errors; whole answer p50 {result['whole_p50']:.2f} s, p95 {result['whole_p95']:.2f} s; first checked "
            f"sentence p95 {result['first_p95']:.2f} s")


def test_eight_users_three_questions_each_on_fakes(tmp_path):
    url, process, log = _serve(lambda port: ["-m", "tests.fake_server", str(port), str(tmp_path)], tmp_path,
                               {"DELAY": "0.01"}, 120)
    try:
        result = loadtest.run(url, USERS, 120, _questions(), PER_USER)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    print(_report(result))
    assert result["questions"] == USERS * PER_USER
    assert result["errors"] == 0 and result["answered"] == USERS * PER_USER, result["error_examples"]
    assert 0 < result["whole_p50"] <= result["whole_p95"] < 60


def test_only_loopback_and_bounded_counts(capsys):
    assert loadtest.main(["--url", "http://192.0.2.1:7860/"]) == 2
    assert loadtest.main(["--users", "65"]) == 2
    assert loadtest.main(["--questions", "11"]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_eight_users_three_questions_each_against_qa_serve(tmp_path):
    """The real models in `qa serve`: questions take turns on the one model, none fails."""
    index = tmp_path / "index"
    env = {"QA_INDEX": str(index), "QA_THREADS": os.environ.get("QA_THREADS", "1")}
    subprocess.run([sys.executable, "-m", "qa.cli", "index", str(REPO / "corpus")], cwd=REPO, check=True,
                   capture_output=True, timeout=300, env={**os.environ, **env})
    url, process, log = _serve(lambda port: ["-m", "qa.cli", "serve", "--port", str(port)], tmp_path, env, 300)
    try:
        from gradio_client import Client

        Client(url, verbose=False).predict("Who signed the letter?", "", api_name="/ask")  # the model is loaded
        result = loadtest.run(url, USERS, 900, _questions(), PER_USER)
        rss = loadtest._rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    print(_report(result) + f"; server RSS {rss:.0f} MB")
    assert result["errors"] == 0 and result["answered"] == USERS * PER_USER, result["error_examples"]
