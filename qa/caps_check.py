"""The caps, probed as the issue's attacker did: each oversized input is answered or refused
within seconds, and the process stays small.

    python -m qa.bench caps        (the real models; `tests/test_caps.py` runs it, marked slow)

Probes, each through the path a user's request takes (the limits the edges check, then the
service's answerer, with its prompt budget and generation time limit):

* a 2 MB document on one line of prose (cut into paragraphs at sentence ends), asked about
  a sentence in its middle;
* a 2 MB document on one line with no space and no sentence end (one "word": before the
  character cap, one paragraph and one sentence of 2 MB);
* a 100 KB history in one turn (refused: "start a new conversation"), and 100 KB spread over
  many turns (the last ones kept, answered);
* a 100 KB question (refused), also as a whole `qa ask` process.

The documents are indexed first (that time is reported, not part of the 10 s: an upload
embeds its paragraphs once). Peak RSS is the process's high-water mark (ru_maxrss), models
included.
"""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import QAError
from .limits import check_question, trim_history

SECONDS = 10.0  # the bound per probe
RSS_MB = 2600.0  # the bound on the process, models included
NEEDLE = "The lighthouse on Skerry Island was built in 1874 by the engineer Agnes Moreau."
NEEDLE_QUESTION = "Who built the lighthouse on Skerry Island?"
_TOWNS = ("Arden Bexley Carrow Dunmore Elsby Fenwick Garrow Hale Ivesdon Jarrow Kelso Lanark Morden Norley "
          "Orwell Pellow Quarry Rothes Selby Tarland").split()
_MONTHS = "January February March April May June July August September October November December".split()


def prose_line(size: int = 2_000_000, seed: int = 0) -> str:
    """One line of varied, plausible sentences with the needle in the middle."""
    rng = random.Random(seed)
    sentences, length = [], 0
    while length < size:
        sentence = (f"Station {rng.randint(1, 9999)} near {rng.choice(_TOWNS)} recorded {rng.randint(1, 400)} "
                    f"millimetres of rain in {rng.choice(_MONTHS)} {rng.randint(1900, 2020)}.")
        sentences.append(sentence)
        length += len(sentence) + 1
    sentences.insert(len(sentences) // 2, NEEDLE)
    return " ".join(sentences)


SPACELESS_QUESTION = "Which engineer built the lighthouse?"  # no name: not declined for one


def spaceless_line(size: int = 2_000_000) -> str:
    """One 2 MB "word": lighthouse,Skerry,Island,... with no space and no sentence end."""
    unit = "lighthouse,Skerry,Island,built,engineer,Agnes,Moreau,"
    return (unit * (size // len(unit) + 1))[:size]


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _ask(service, question, history=None) -> tuple[str, float]:
    """What a user gets for one request, and how long it took (the edges' checks included)."""
    started = time.perf_counter()
    try:
        question = check_question(question, service.limits)
        history = trim_history(history, service.limits)
        answer = service.answerer().ask(question, history)
        result = "declined" if answer.abstained else "answered: " + answer.text[:120]
    except QAError as error:
        result = "refused: " + str(error).splitlines()[0][:120]
    return result, time.perf_counter() - started


def run(folder: Path | None = None, embedder=None, generator=None) -> dict:
    """Every probe, in one process; the real models unless others are given (tests: fakes)."""
    from .service import Service

    if folder is None:
        with tempfile.TemporaryDirectory(prefix="qa-caps-") as temporary:
            return run(Path(temporary), embedder, generator)
    folder = Path(folder)
    rows = []
    shared = Service(index_path=folder / "unused", embedder=embedder, generator=generator)
    embedder, generator = shared.embedder, shared.generator()
    services = {}
    for name, text in (("line-2mb.txt", prose_line()), ("word-2mb.txt", spaceless_line())):
        path = folder / name
        path.write_text(text + "\n", encoding="utf-8")
        service = Service(index_path=folder / f"index-{name}", embedder=embedder, generator=generator)
        started = time.perf_counter()
        index = service.build([path])
        service.answerer()  # the answerer's start-up (sentence vectors of small corpora) is not a question's time
        services[name] = service
        rows.append({"probe": f"index {name} ({len(text) / 1e6:.1f} MB, one line)",
                     "result": f"{len(index)} paragraph(s), longest {max(len(p.text) for p in index.paragraphs):,} "
                               f"characters", "seconds": time.perf_counter() - started, "bounded": False})
    for name, question in (("line-2mb.txt", NEEDLE_QUESTION), ("word-2mb.txt", SPACELESS_QUESTION)):
        result, seconds = _ask(services[name], question)
        rows.append({"probe": f"question about {name}", "result": result, "seconds": seconds, "bounded": True})
    service = services["line-2mb.txt"]
    big = "x" * 100_000
    for probe, question, history in (
            ("100 KB history in one turn", NEEDLE_QUESTION, [{"question": "Tell me about rain.", "answer": big}]),
            ("100 KB history in 1,000 turns", NEEDLE_QUESTION,
             [{"question": f"Question {n}?", "answer": "y" * 88} for n in range(1_000)]),
            ("100 KB question", "Who built it? " + big, None)):
        result, seconds = _ask(service, question, history)
        rows.append({"probe": probe, "result": result, "seconds": seconds, "bounded": True})
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "qa.cli", "ask", "Who built it? " + big],
                             capture_output=True, text=True, timeout=120)
    rows.append({"probe": "100 KB question, whole `qa ask` process",
                 "result": f"exit {process.returncode}: " + (process.stderr.strip().splitlines() or [""])[-1][:120],
                 "seconds": time.perf_counter() - started, "bounded": True})
    return {"rows": rows, "rss_peak_mb": _rss_peak_mb()}


def table(report: dict) -> str:
    lines = ["| probe | result | seconds |", "|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['probe']} | {row['result'].replace('|', '/')} | {row['seconds']:.2f} |")
    lines.append(f"\nPeak RSS of the process (models included): {report['rss_peak_mb']:,.0f} MB")
    return "\n".join(lines)


def main() -> int:
    report = run()
    print(table(report))
    slow = [r["probe"] for r in report["rows"] if r["bounded"] and r["seconds"] > SECONDS]
    return 1 if slow or report["rss_peak_mb"] > RSS_MB else 0
