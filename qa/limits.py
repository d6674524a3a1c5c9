"""Size caps on what users send, checked at the edges before any model loads.

One model serves everyone on two cores, so a single oversized input blocks every other user:
a 43 KB chat history once held the only model slot for almost two minutes, and an empty
question took 14-25 s to be refused because the models loaded before the check. The edges
(the command line, the web chat, the JSON API) call `check_question` and `trim_history`
first, so such inputs are refused in milliseconds with one line that says the limit.

This module imports nothing heavy on purpose: it must be usable before numpy, torch or
gradio are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import QuestionError


@dataclass(frozen=True)
class Limits:
    """Every cap on user input, with why it has its value."""

    # The pipeline checks the same cap (qa.answer.check_question calls check_question): a real
    # question is a sentence or two; 2,000 characters is ten times the longest in the test sets.
    question_chars: int = 2_000
    # The answerer reads only the last AnswerSettings.history_turns (2) turns; keeping a few
    # more costs nothing and leaves room to raise that setting. Older turns are dropped, not
    # refused: a long conversation in the web chat must keep working.
    history_turns: int = 6
    # Characters in the turns kept. Answers are a sentence or two (56 new tokens at most), so
    # six real turns stay far below this; a pasted 100 KB "answer" is refused, because every
    # character of history goes into the retrieval query or the prompt.
    history_chars: int = 8_000
    # Per upload file, as before (Gradio refuses larger files before they reach us too).
    upload_file_mb: int = 20
    # Per browser session: each upload re-embeds on the shared cores, so one visitor may not
    # keep them busy indefinitely. An operator adds more with `qa index --add`.
    upload_files_per_session: int = 10
    upload_mb_per_session: int = 50
    # Seconds one answer may generate (qa/deadline.py) before it is stopped with a message and
    # the model freed. Answers take 2-4 s on a quiet machine and under 25 s at the 95th
    # percentile on a loaded one (README, Figures); past a minute nothing good is coming.
    generation_timeout_s: float = 60.0
    # With `qa serve --network`, sessions holding uploads of their own at once (qa/sessions.py):
    # each keeps a private copy of the index in memory until its page is closed.
    private_sessions: int = 10


DEFAULT_LIMITS = Limits()


def check_question(question, limits: Limits = DEFAULT_LIMITS) -> str:
    """The question stripped, or a QuestionError saying why it is refused."""
    if question is None:
        question = ""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    question = question.strip()
    if not question:
        raise QuestionError("the question is empty")
    if len(question) > limits.question_chars:
        raise QuestionError(
            f"the question is {len(question):,} characters long; the limit is {limits.question_chars:,}"
        )
    return question


def _turn(item) -> dict:
    # The shapes qa.answer.normalise_history accepts, checked so a malformed turn is a
    # one-line error here rather than a TypeError deep in the pipeline.
    if isinstance(item, dict):
        question, answer = item.get("question", ""), item.get("answer", "")
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        question, answer = item
    elif hasattr(item, "question") and hasattr(item, "answer"):  # qa.answer.Turn
        question, answer = item.question, item.answer
    else:
        raise QuestionError("each history turn must be {\"question\": ..., \"answer\": ...}")
    answer = "" if answer is None else answer
    if not isinstance(question, str) or not isinstance(answer, str):
        raise QuestionError("a history turn's question and answer must be text")
    return {"question": question, "answer": answer}


def trim_history(history, limits: Limits = DEFAULT_LIMITS) -> list[dict]:
    """The last `history_turns` turns as {question, answer} dicts, or a QuestionError.

    Older turns are dropped (they are never read); the kept ones may hold at most
    `history_chars` characters together.
    """
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise QuestionError("the history must be a list of {\"question\", \"answer\"} turns")
    kept = [_turn(item) for item in list(history)[-limits.history_turns:]] if limits.history_turns > 0 else []
    size = sum(len(t["question"]) + len(t["answer"]) for t in kept)
    if size > limits.history_chars:
        raise QuestionError(
            f"the conversation history is {size:,} characters long; the limit is "
            f"{limits.history_chars:,}: start a new conversation"
        )
    return kept
