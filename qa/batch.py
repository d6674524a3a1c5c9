"""Batch questions (`qa ask --batch FILE`): one JSON object per line, each line judged alone.

A batch of a thousand questions must not be lost to one bad line, so the file is read as
bytes and every line is decoded, parsed and checked on its own: a bad line becomes an error
for that line only (`BatchLine.error`), and the good lines are answered. Everything here
runs before any model loads, so a file of only bad lines is refused in milliseconds.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field

from .errors import QuestionError
from .limits import DEFAULT_LIMITS, Limits, check_question, trim_history

SHAPE = '{"id", "question", "history"?}'


@dataclass
class BatchLine:
    number: int  # 1-based line number in the file
    id: object = None  # as given (a string or a number), None when absent or unreadable
    question: str = ""
    history: list = field(default_factory=list)
    error: str = ""  # why this line is not answered; empty for a good line


def parse_batch(data: bytes, limits: Limits = DEFAULT_LIMITS) -> list[BatchLine]:
    """Every non-blank line of a JSONL file, good or with its error."""
    if data.startswith(codecs.BOM_UTF8):  # editors on Windows add one; it is not JSON
        data = data[len(codecs.BOM_UTF8):]
    seen: dict[tuple[type, object], int] = {}
    lines = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        line = BatchLine(number)
        try:
            _parse_line(line, raw, limits, seen)
        except QuestionError as error:
            line.error = str(error)
        lines.append(line)
    return lines


def _parse_line(line: BatchLine, raw: bytes, limits: Limits, seen: dict) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise QuestionError(
            f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at position {error.start}); save the file as UTF-8"
        ) from None
    try:
        item = json.loads(text)
    except json.JSONDecodeError as error:
        raise QuestionError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:  # "[[[[...": nested deeper than the parser goes
        raise QuestionError("not valid JSON (nested too deeply)") from None
    if not isinstance(item, dict):
        raise QuestionError(f"each line must be a JSON object {SHAPE}, not a JSON {type(item).__name__}")
    qid = item.get("id")
    if qid is not None:
        # Booleans are ints to Python but would print as true/false: not an id anyone means.
        if isinstance(qid, bool) or not isinstance(qid, (str, int)):
            raise QuestionError("the \"id\" must be a string or an integer")
        line.id = qid
        key = (type(qid), qid)  # "1" and 1 are different ids in the output
        if key in seen:
            raise QuestionError(f"duplicate id {json.dumps(qid, ensure_ascii=False)} (first used on line {seen[key]})")
        seen[key] = line.number
    if "question" not in item:
        raise QuestionError(f"missing \"question\" (each line is {SHAPE})")
    line.question = check_question(item["question"], limits)
    line.history = trim_history(item.get("history"), limits)
