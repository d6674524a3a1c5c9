"""The chat's line (ModelGate), background evaluations and the documents overview, with fakes."""

import json
import threading
import time
from pathlib import Path

import pytest

from qa.answer import Answer, AnswerSettings, Citation, Passage
from qa.gate import ModelGate, Preempted, Preempting
from qa.service import Service

from .conftest import REPO, SEED, FakeEmbedder, ScriptedGenerator

ui = pytest.importorskip("qa.ui")


class SlowGenerator(ScriptedGenerator):
    """Like the scripted one, but each piece takes `delay` seconds (a real model's pace)."""

    def __init__(self, reply, delay=0.05):
        super().__init__(reply)
        self.delay = delay
        self.lock = threading.Lock()  # held across the whole answer, as the real Generator does
        self.started = 0

    def stream(self, messages, max_new_tokens=120):
        with self.lock:
            self.started += 1
            for piece in super().stream(messages, max_new_tokens):
                time.sleep(self.delay)
                yield piece


@pytest.fixture
def slow_app(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_UPLOADS", str(tmp_path / "uploads"))
    service = Service(index_path=tmp_path / "index", embedder=FakeEmbedder(),
                      generator=SlowGenerator("France and Mexico led the initiative on veto restraint [¶11]. " * 4),
                      settings=AnswerSettings(min_dense=0.05))
    service.build([SEED])
    return ui.ChatApp(service)


def _testset(tmp_path, n=6):
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps({"id": i, "question": "Which countries led the initiative on veto restraint?",
                                        "gold": ["r2p-2017-dialogue-summary#11"], "answer": "France and Mexico"}) + "\n"
                            for i in range(n)))
    return path


def test_gate_keeps_arrival_order_and_positions():
    gate = ModelGate()
    first, second, third = gate.enter(), gate.enter(), gate.enter()
    assert [gate.ahead(t) for t in (first, second, third)] == [0, 1, 2]
    assert gate.wait_turn(first, 0) and not gate.wait_turn(second, 0.01)
    gate.leave(first)
    assert gate.ahead(third) == 1 and gate.wait_turn(second, 0)
    gate.leave(second), gate.leave(third)
    assert not gate.chat_busy


def test_a_waiting_question_says_so_in_the_chat_with_its_position(slow_app):
    blocker = slow_app.gate.enter()  # another visitor's question is being answered
    updates = slow_app.chat("Which countries led the initiative on veto restraint?", [])
    first = next(updates)[0]
    assert first[-2]["content"].startswith("Which countries")  # the question stays in the chat
    assert "Waiting for your turn: 1 question ahead of yours (you are number 2 in line)" in first[-1]["content"]
    slow_app.gate.leave(blocker)
    rest = [u[0][-1]["content"] for u in updates]
    assert "Sources (1)" in rest[-1] and not any("Waiting" in c for c in rest[1:])
    assert not slow_app.gate.chat_busy


def test_preempting_generator_stops_at_the_next_token_and_frees_the_model():
    gate, stop = ModelGate(), threading.Event()
    inner = SlowGenerator("one two three four five six", delay=0.01)
    pieces = Preempting(inner, gate, stop).stream([])
    assert next(pieces) == "one "
    ticket = gate.enter()
    with pytest.raises(Preempted):
        next(pieces)
    assert inner.lock.acquire(timeout=1)  # the model's lock is free at once
    inner.lock.release()
    gate.leave(ticket)


def test_a_generator_stopped_while_reading_its_prompt_is_preempted():
    """The in-process generator checks `interrupted` while it reads the prompt (between the
    layers of its forward pass); a stream that ends early because a chat question came is
    Preempted, not an answer."""
    gate, stop = ModelGate(), threading.Event()

    class LayeredPrefill:
        name = "layered"

        def stream(self, messages, max_new_tokens=120, interrupted=None):
            for _ in range(5):  # five layers of the prompt's pass
                if interrupted():
                    return
                gate.enter() if not gate.chat_busy else None  # a chat question arrives mid-prompt
            yield "never reached"

    with pytest.raises(Preempted):
        list(Preempting(LayeredPrefill(), gate, stop).stream([]))


def test_evaluation_runs_in_the_background_and_cancel_stops_it_fast(slow_app, tmp_path):
    job, message = slow_app._start(str(_testset(tmp_path, 40)), "s1")
    assert job is not None, message
    deadline = time.monotonic() + 20
    while job.done < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.done >= 1 and job.seconds_left() is not None
    shown = ui.progress_html(job.progress())
    assert f"of {job.total} questions" in shown and "left" in shown
    began = time.monotonic()
    job.cancel()
    job.thread.join(5)
    assert job.state == "cancelled" and time.monotonic() - began < 5
    assert job.done < job.total


def test_chat_questions_go_first_while_an_evaluation_runs(slow_app, tmp_path):
    short = "France and Mexico led the initiative on veto restraint [¶11]."
    generator = slow_app.service.generator()
    # The evaluation's answers are long (100 pieces, 5 s), the chat's short (9 pieces).
    generator.reply = lambda messages: (short + " " + "and " * 91 if threading.current_thread().name
                                        .startswith("evaluation") else short)
    question = "Which countries led the initiative on veto restraint?"
    began = time.monotonic()
    list(slow_app.chat(question, []))
    idle = time.monotonic() - began
    job, _ = slow_app._start(str(_testset(tmp_path, 40)), "s1")
    while generator.started < 2:
        time.sleep(0.01)
    time.sleep(0.2)  # well inside the evaluation's first answer
    began = time.monotonic()
    updates = list(slow_app.chat(question, []))
    busy = time.monotonic() - began
    assert "Sources (1)" in updates[-1][0][-1]["content"]
    # The evaluation's answer in progress stops at its next token, so the chat waits for about
    # one token, not for the rest of an evaluation answer (seconds here).
    assert busy < idle + 0.5, (busy, idle)
    assert job.progress().state in ("running", "paused")
    job.cancel()
    job.thread.join(5)
    assert job.finished
    job.cancel()
    job.thread.join(5)
    assert job.finished


def test_one_evaluation_at_a_time_and_closing_the_page_stops_it(slow_app, tmp_path):
    job, _ = slow_app._start(str(_testset(tmp_path, 40)), "s1")
    second, message = slow_app._start(str(_testset(tmp_path, 3)), "s2")
    assert second is None and "another visitor's evaluation is running" in message
    slow_app.evaluations.end_session("s1")
    job.thread.join(5)
    assert job.state == "cancelled" and "closed" in ui.progress_html(job.progress())


def test_overview_names_each_document_with_title_date_and_length(slow_app):
    shown = slow_app.overview()
    assert "r2p-2017-dialogue-summary.txt" in shown
    assert "Informal, Interactive Dialogue of the 71st Session of the General Assembly" in shown
    assert "6 September 2017" in shown and "19 paragraphs" in shown and "1,881 words" in shown
    assert ui.WHAT_YOU_CAN_ASK in shown


@pytest.mark.parametrize("raw,title,date", [
    ("APT\n===\n\napt is the main package manager.\n", "APT", ""),
    ("# Notes\n\nWritten on 2024-03-05 by me.\n", "Notes", "2024-03-05"),
    ("GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n", "GNU GENERAL PUBLIC LICENSE", "29 June 2007"),
    ("Just a note without a date.\n", "Just a note", ""),
])
def test_overview_titles_and_dates(raw, title, date):
    from qa.documents import Paragraph
    from qa.overview import describe

    paragraphs = [Paragraph("d#1", "d.txt", "¶1", None, "", "Some text here.")]
    summary = describe("d.txt", paragraphs, raw)
    assert summary.title.startswith(title) and summary.date == date


def test_pdf_sources_show_their_page_and_declines_keep_jargon_in_details():
    passage = Passage("d#5", "5 ¶2", "gpl.pdf", "Conveying", "Text of it.", 0.7, 0.7, 0.5, 1)
    answer = Answer("q", "You may convey it [5 ¶2].", False, [Citation("d#5", "5 ¶2", "gpl.pdf", "", "Text")],
                    [passage])
    shown = ui.format_answer(answer, 3, page_of=lambda pid: 7)
    assert 'href="#qa-src-3-d-5"' in shown and '<details id="qa-src-3-d-5">' in shown and "page 7" in shown
    declined = Answer("q", "The document does not say.", True, [], [passage],
                      reason="no passage is close to the question (best similarity 0.21)")
    shown = ui.format_answer(declined)
    default_view = shown.split("<details><summary>Details")[0]
    assert "similarity" not in default_view and "0.21" in shown
    plain = Answer("q", "The document does not say.", True, [], [], reason="the document never mentions China")
    assert "Why: the document never mentions China." in ui.format_answer(plain)


def test_followup_history_reads_chips_back_as_markers():
    content = ui.format_answer(Answer("q", "France led it [¶11].", False, [Citation("d#11", "¶11", "d", "", "t")],
                                      [Passage("d#11", "¶11", "d", "", "t", 1, 1, 1, 1)]))
    turns = ui._history_turns([{"role": "user", "content": "Who?"}, {"role": "assistant", "content": content}])
    assert turns == [{"question": "Who?", "answer": "France led it [¶11]."}]


def test_the_gate_lets_as_many_generate_as_the_backend_allows():
    from qa.gate import ModelGate

    gate = ModelGate(capacity=2)
    first, second, third = gate.enter(), gate.enter(), gate.enter()
    assert gate.wait_turn(first, 0) and gate.wait_turn(second, 0) and not gate.wait_turn(third, 0)
    assert gate.ahead(third) == 1
    gate.leave(first)
    assert gate.wait_turn(third, 0) and gate.ahead(third) == 0


def test_background_work_waits_a_quiet_moment_after_a_chat_question():
    gate = ModelGate()
    gate.leave(gate.enter())
    began = time.monotonic()
    assert gate.wait_idle(quiet=0.3)
    assert time.monotonic() - began >= 0.29
    stop = threading.Event()
    stop.set()
    gate.leave(gate.enter())
    assert not gate.wait_idle(stop, quiet=5)  # a cancel does not wait for the quiet


def test_every_symbol_the_page_uses_has_a_glyph_in_debians_fonts():
    """✓ ⚠ ✗ ● and the rest must not render as empty boxes (⧗ did, with DejaVu)."""
    fonts = pytest.importorskip("fontTools.ttLib")
    path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not path.exists():
        pytest.skip("fonts-dejavu-core is not installed")
    covered = set(fonts.TTFont(path).getBestCmap())
    source = (REPO / "qa/ui.py").read_text(encoding="utf-8")
    missing = sorted({ch for ch in source if ord(ch) > 127 and ord(ch) not in covered})
    assert missing == [], missing


def test_a_cancelled_evaluation_still_shows_the_figures_of_the_questions_done(slow_app, tmp_path):
    job, _ = slow_app._start(str(_testset(tmp_path, 40)), "s1")
    while job.done < 2:
        time.sleep(0.05)
    job.cancel()
    job.thread.join(5)
    table, plot, _ = slow_app._results(job)
    assert f"Figures for the {job.done} questions done before it stopped" in table and "| Key facts |" in table
    assert plot is None
