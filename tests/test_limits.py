"""Caps on questions and history: refused at the edges in well under a second, before any model loads."""

import json
import time

import pytest

from qa import cli
from qa.errors import QuestionError
from qa.limits import Limits, check_question, trim_history

from .conftest import FakeEmbedder, NoModels

BIG = "x" * 100_000  # 100 KB


@pytest.mark.parametrize("question", ["", "   \n", None, 42, BIG])
def test_bad_questions(question):
    with pytest.raises(QuestionError) as caught:
        check_question(question)
    assert "\n" not in str(caught.value)


def test_question_is_stripped():
    assert check_question("  Who led it?  ") == "Who led it?"


def test_history_keeps_the_last_turns_only():
    history = [{"question": f"q{i}", "answer": "a" * 100} for i in range(1_000)]  # 100 KB in many turns
    kept = trim_history(history, Limits(history_turns=3))
    assert [t["question"] for t in kept] == ["q997", "q998", "q999"]


@pytest.mark.parametrize("history", [
    [{"question": "q", "answer": BIG}],  # 100 KB in one turn
    "not a list", {"question": "q"}, [42], [{"question": 1, "answer": "a"}], [["only one"]],
])
def test_bad_history(history):
    with pytest.raises(QuestionError) as caught:
        trim_history(history)
    assert "\n" not in str(caught.value)


def test_history_shapes_accepted():
    from qa.answer import Turn

    assert trim_history([("q1", None), Turn("q2", "a2"), {"question": "q3"}]) == [
        {"question": "q1", "answer": ""}, {"question": "q2", "answer": "a2"}, {"question": "q3", "answer": ""}]
    assert trim_history(None) == []


def _refused_fast(capsys, argv):
    started = time.perf_counter()
    code = cli.main(argv)
    seconds = time.perf_counter() - started
    err = capsys.readouterr().err
    assert code == 1 and seconds < 1.0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("question", ["", "   ", BIG])
def test_cli_refuses_before_loading_anything(capsys, monkeypatch, question):
    monkeypatch.setattr(cli, "_service", lambda args: pytest.fail("the service was created"))
    err = _refused_fast(capsys, ["ask", question])
    assert err.startswith("qa ask: error: the question")


@pytest.fixture
def lazy_app(tmp_path):
    ui = pytest.importorskip("qa.ui")
    return ui, ui.ChatApp(NoModels(index_path=tmp_path / "ix", embedder=FakeEmbedder()))


@pytest.mark.parametrize("message,history,expected", [
    (BIG, [], "limit is 2,000"),
    ("Who led it?", [{"role": "user", "content": "q"}, {"role": "assistant", "content": BIG}], "history"),
])
def test_web_chat_refuses_before_loading_the_model(lazy_app, message, history, expected):
    _, app = lazy_app
    started = time.perf_counter()
    updates = list(app.chat(message, history))
    assert time.perf_counter() - started < 1.0
    final = updates[-1][0][-1]["content"]
    assert final.startswith("✗") and expected in final and "Loading" not in final
    assert all("Loading" not in u[0][-1]["content"] for u in updates if u[0])
    assert len(updates[-1][0][-2]["content"]) <= 201  # the refused question is not echoed in full


@pytest.mark.parametrize("question,history", [(BIG, ""), ("", ""), ("q", json.dumps([{"question": "q", "answer": BIG}])),
                                              ("q", json.dumps("not a list")), ("q", "[" * 100_000)])
def test_api_refuses_before_loading_the_model(lazy_app, question, history):
    ui, app = lazy_app
    started = time.perf_counter()
    with pytest.raises(ui.gr.Error):
        app.ask_api(question, history)
    assert time.perf_counter() - started < 1.0
