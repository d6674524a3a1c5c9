"""`qa ask --batch`: every bad line gets its own error record, the good lines are all answered."""

import json
import time

import pytest

from qa import cli
from qa.answer import AnswerSettings
from qa.batch import parse_batch
from qa.service import Service

from .conftest import SEED, FakeEmbedder, NoModels, ScriptedGenerator

BIG = "x" * 100_000
GOOD = "Which countries led the initiative on veto restraint?"


@pytest.fixture
def service(tmp_path, monkeypatch):
    service = Service(index_path=tmp_path / "index", embedder=FakeEmbedder(),
                      generator=ScriptedGenerator("France and Mexico led the initiative on veto restraint [¶11]."),
                      settings=AnswerSettings(min_dense=0.05))
    service.build([SEED])
    monkeypatch.setattr(cli, "_service", lambda args: service)
    return service


def _line(**item) -> bytes:
    return json.dumps(item, ensure_ascii=False).encode("utf-8")


FUZZ = [  # (line bytes, expected id, a word the error must contain); None: a good line
    (_line(id="g1", question=GOOD), "g1", None),
    (b"{not json", None, "JSON"),
    (b"[1, 2, 3]", None, "object"),
    (b'"just a string"', None, "object"),
    (_line(id="m1"), "m1", "missing"),
    (_line(id="e1", question="   "), "e1", "empty"),
    (_line(id="t1", question=42), "t1", "text"),
    (_line(id="b1", question=BIG), "b1", "limit"),
    (b'{"id": "u1", "question": "Who led \xff\xfe it?"}', None, "UTF-8"),
    (_line(id="h1", question=GOOD, history="not a list"), "h1", "history"),
    (_line(id="h2", question=GOOD, history=[42]), "h2", "history turn"),
    (_line(id="h3", question=GOOD, history=[{"question": "q", "answer": BIG}]), "h3", "history"),
    (_line(id=["x"], question=GOOD), None, "id"),
    (_line(id="g2", question=GOOD, history=[{"question": "Who led it?", "answer": "France and Mexico."}]), "g2", None),
    (_line(id="g1", question=GOOD), "g1", "duplicate"),
    (b"[" * 100_000, None, "JSON"),
    (_line(question=GOOD), None, None),  # no id at all is fine, and not a duplicate of another
    (_line(question=GOOD), None, None),
    (_line(id=7, question=GOOD), 7, None),
    (_line(id="7", question=GOOD), "7", None),  # a string "7" is another id than the number 7
]


def test_parse_batch_judges_each_line_alone():
    lines = parse_batch(b"\xef\xbb\xbf" + b"\n\n".join(raw for raw, _, _ in FUZZ) + b"\r\n\n")
    assert len(lines) == len(FUZZ)
    for line, (_, qid, word) in zip(lines, FUZZ):
        assert line.id == qid
        if word is None:
            assert line.error == "" and line.question == GOOD
        else:
            assert word in line.error and "\n" not in line.error
    assert lines[0].number == 1 and lines[1].number == 3  # numbers are the file's, blank lines counted
    assert "first used on line 1" in lines[14].error


def test_batch_fuzz_through_the_command(tmp_path, service, capsys):
    batch = tmp_path / "fuzz.jsonl"
    batch.write_bytes(b"\n".join(raw for raw, _, _ in FUZZ) + b"\n")
    assert cli.main(["ask", "--batch", str(batch)]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert len(records) == len(FUZZ)  # one record per line, in the file's order
    for record, (_, qid, word) in zip(records, FUZZ):
        assert record["id"] == qid
        if word is None:
            assert "error" not in record and "France and Mexico" in record["answer"]
        else:
            assert set(record) == {"id", "line", "error"} and word in record["error"]
    bad = sum(1 for _, _, word in FUZZ if word)
    assert captured.err.strip().splitlines()[-1].startswith(
        f"batch: {len(FUZZ)} question(s), {len(FUZZ) - bad} answered, {bad} failed (line 2, 3, 4")
    assert "Traceback" not in captured.err


def test_good_batch_exits_zero(tmp_path, service, capsys):
    batch = tmp_path / "good.jsonl"
    batch.write_bytes(_line(id=1, question=GOOD) + b"\n" + _line(id=2, question=GOOD))  # no final newline
    assert cli.main(["ask", "--batch", str(batch)]) == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == [1, 2]


def test_an_error_while_answering_fails_only_its_line(tmp_path, service, capsys, monkeypatch):
    answerer = service.answerer()
    real_ask = answerer.ask

    def ask(question, history=None):
        if "boom" in question:
            raise RuntimeError("something broke\nsecond line")
        return real_ask(question, history)

    monkeypatch.setattr(answerer, "ask", ask)
    batch = tmp_path / "b.jsonl"
    batch.write_bytes(b"\n".join([_line(id=1, question="boom " + GOOD), _line(id=2, question=GOOD)]))
    assert cli.main(["ask", "--batch", str(batch)]) == 1
    first, second = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert first == {"id": 1, "line": 1, "error": "internal error (RuntimeError: something broke)"}
    assert "France" in second["answer"]


@pytest.mark.parametrize("content", [None, b"", b"\n  \n"])
def test_missing_or_empty_batch_is_one_line(tmp_path, service, capsys, content):
    batch = tmp_path / "b.jsonl"
    if content is not None:
        batch.write_bytes(content)
    assert cli.main(["ask", "--batch", str(batch)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "b.jsonl" in err


def test_cli_batch_of_bad_lines_loads_no_model(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "_service", lambda args: NoModels(index_path=tmp_path / "ix"))
    batch = tmp_path / "b.jsonl"
    batch.write_text(json.dumps({"id": 1, "question": BIG}) + "\n"
                     + json.dumps({"id": 2, "question": "q", "history": [{"question": "q", "answer": BIG}]}) + "\n")
    started = time.perf_counter()
    assert cli.main(["ask", "--batch", str(batch)]) == 1
    assert time.perf_counter() - started < 1.0
    out = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in out]
    assert [r["id"] for r in records] == [1, 2]
    assert "limit is 2,000" in records[0]["error"] and "history" in records[1]["error"]


