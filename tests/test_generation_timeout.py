"""The per-request generation time limit (qa/deadline.py): a slow answer stops, the user gets
one line, and the model is free for the next question."""

import json
import threading
import time

import pytest

from qa import cli
from qa.answer import AnswerSettings
from qa.deadline import TimeLimited
from qa.errors import GenerationTimeout
from qa.limits import Limits
from qa.service import Service

from .conftest import SEED, FakeEmbedder, ScriptedGenerator

QUESTION = "Which countries led the initiative on veto restraint?"
REPLY = "France and Mexico led the initiative on veto restraint [¶11]."


class Slow(ScriptedGenerator):
    """Holds a lock while it generates, as the in-process model does, and is slow for the
    questions that say "slowly" (one piece every `delay` seconds, without end)."""

    def __init__(self, delay=0.05):
        super().__init__(REPLY)
        self.delay = delay
        self.lock = threading.Lock()
        self.closed = 0

    def stream(self, messages, max_new_tokens=120):
        with self.lock:
            try:
                if "slowly" not in messages[-1]["content"]:
                    yield from super().stream(messages, max_new_tokens)
                    return
                while True:
                    time.sleep(self.delay)
                    yield "and "
            finally:
                self.closed += 1


def _service(tmp_path, seconds=0.3):
    service = Service(index_path=tmp_path / "index", embedder=FakeEmbedder(), generator=Slow(),
                      settings=AnswerSettings(min_dense=0.05), limits=Limits(generation_timeout_s=seconds))
    service.build([SEED])
    return service


def test_a_slow_stream_stops_at_the_limit_and_frees_the_model():
    slow = Slow()
    started = time.perf_counter()
    with pytest.raises(GenerationTimeout, match="stopped after 0.2 s") as caught:
        list(TimeLimited(slow, 0.2).stream([{"role": "user", "content": "slowly"}]))
    assert 0.2 <= time.perf_counter() - started < 1.0
    assert "\n" not in str(caught.value)
    assert slow.closed == 1 and not slow.lock.locked()  # closed at once, not at garbage collection


def test_a_fast_stream_is_untouched():
    assert "".join(TimeLimited(Slow(), 5).stream([{"role": "user", "content": "q"}])) == REPLY


def test_the_answerer_raises_the_typed_error_and_answers_the_next_question(tmp_path):
    service = _service(tmp_path)
    answerer = service.answerer()
    with pytest.raises(GenerationTimeout):
        answerer.ask("Which countries led the initiative on veto restraint, slowly?")
    assert not service.generator().lock.locked()
    assert "France and Mexico" in answerer.ask(QUESTION).text


def test_the_command_line_gives_one_line(tmp_path, monkeypatch, capsys):
    service = _service(tmp_path)
    monkeypatch.setattr(cli, "_service", lambda args: service)
    assert cli.main(["ask", "Which countries led the initiative on veto restraint, slowly?"]) == 1
    err = capsys.readouterr().err
    assert err.strip().startswith("qa ask: error: the answer was stopped after 0.3 s")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_batch_line_that_times_out_fails_alone(tmp_path, monkeypatch, capsys):
    service = _service(tmp_path)
    monkeypatch.setattr(cli, "_service", lambda args: service)
    batch = tmp_path / "q.jsonl"
    batch.write_text(json.dumps({"id": 1, "question": "Which countries led it, slowly?"}) + "\n"
                     + json.dumps({"id": 2, "question": QUESTION}) + "\n")
    assert cli.main(["ask", "--batch", str(batch)]) == 1
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "stopped after" in first["error"] and "France and Mexico" in second["answer"]


def test_the_answer_timeout_flag(tmp_path):
    args = cli.build_parser().parse_args(["--index", str(tmp_path), "ask", "q", "--answer-timeout", "7.5"])
    assert cli._service(args).limits.generation_timeout_s == 7.5
    with pytest.raises(SystemExit):
        cli.main(["ask", "q", "--answer-timeout", "0"])


def test_the_web_chat_says_so_and_the_next_question_goes_through(tmp_path, monkeypatch):
    ui = pytest.importorskip("qa.ui")
    monkeypatch.setenv("QA_UPLOADS", str(tmp_path / "uploads"))
    app = ui.ChatApp(_service(tmp_path))
    updates = list(app.chat("Which countries led the initiative on veto restraint, slowly?", []))
    final = updates[-1][0][-1]["content"]
    assert final.startswith("✗ the answer was stopped after 0.3 s") and "Traceback" not in final
    assert app.gate.waiting == 0  # its place in line is given up
    assert "France and Mexico" in list(app.chat(QUESTION, []))[-1][0][-1]["content"]
    with pytest.raises(ui.gr.Error, match="stopped after"):
        app.ask_api("Which countries led the initiative on veto restraint, slowly?", "")
    assert app.gate.waiting == 0
