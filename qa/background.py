"""Evaluations as background jobs: one at a time, never in a chat question's way, cancellable.

A job runs the test set question by question in its own thread, with its own Answerer whose
generator is wrapped in `gate.Preempting`: it runs only while no chat question runs or waits,
and stops within milliseconds when one arrives (that question is then asked again, so the
figures are those of an uninterrupted run; the time it spent waiting is not counted in the
estimate of time left). Cancelling, or the browser session that started it ending, stops it
within a token. No gradio here; qa/ui.py shows a job's `progress()`.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .answer import Answerer
from .gate import ModelGate, Preempted, Preempting

MAX_EVALUATIONS = 1  # at once, for the whole server: two would halve each other's speed
# After a chat question, the evaluation waits this long before its next question: a reader's
# follow-up often comes soon, and an evaluation question that has begun cannot stop before the
# model has read its prompt (a second or two on two cores).
QUIET_AFTER_CHAT_S = 3.0
HEARTBEAT_S = 120.0  # a job whose page has not asked for its progress this long is stopped


@dataclass
class Progress:
    state: str  # "running", "paused", "done", "cancelled", "failed"
    done: int
    total: int
    seconds_left: float | None  # None until one question has been timed
    message: str = ""


@dataclass
class EvaluationJob:
    session: str
    items: list
    testset: Path
    state: str = "running"
    done: int = 0
    error: str = ""
    reason: str = ""  # why it stopped early
    results: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    report: Path | None = None
    durations: list = field(default_factory=list)  # seconds each finished question ran
    started: float = field(default_factory=time.monotonic)
    stopped_at: float | None = None
    last_seen: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)
    paused: bool = False
    thread: threading.Thread | None = None

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled", "failed")

    def cancel(self, reason: str = "cancelled") -> None:
        if not self.finished:
            self.reason = reason
            self.stop.set()

    def seconds_left(self) -> float | None:
        if not self.durations:
            return None
        recent = self.durations[-10:]
        return sum(recent) / len(recent) * (self.total - self.done)

    def progress(self) -> Progress:
        self.last_seen = time.monotonic()
        state = "paused" if self.state == "running" and self.paused else self.state
        return Progress(state, self.done, self.total, self.seconds_left(), self.error or self.reason)


class Evaluations:
    """The server's evaluation jobs, per browser session, at most MAX_EVALUATIONS running."""

    def __init__(self, service, gate: ModelGate):
        self.service, self.gate = service, gate
        self.jobs: dict[str, EvaluationJob] = {}
        self._lock = threading.Lock()

    def running(self) -> list[EvaluationJob]:
        return [j for j in self.jobs.values() if not j.finished]

    def start(self, session: str, items: list, testset: Path) -> EvaluationJob:
        """Start a job; ValueError with a sentence when one is already running."""
        with self._lock:
            mine = self.jobs.get(session)
            if mine and not mine.finished:
                raise ValueError("this page's evaluation is still running: cancel it first")
            others = self.running()
            if len(others) >= MAX_EVALUATIONS:
                other = others[0]
                raise ValueError(f"another visitor's evaluation is running ({other.done} of {other.total} "
                                 f"questions done); try again when it has finished")
            job = EvaluationJob(session, list(items), testset)
            self.jobs[session] = job
        job.thread = threading.Thread(target=self._run, args=(job,), daemon=True, name=f"evaluation-{session[:8]}")
        job.thread.start()
        return job

    def get(self, session: str) -> EvaluationJob | None:
        return self.jobs.get(session)

    def end_session(self, session: str) -> None:
        job = self.jobs.get(session)
        if job:
            job.cancel("its page was closed")

    def _run(self, job: EvaluationJob) -> None:
        from .evaluate import evaluate, summarise, write_report

        try:
            service = self.service
            answerer = Answerer(service.index, Preempting(service.generator(), self.gate, job.stop), service.settings)
            for item in job.items:
                while True:
                    if time.monotonic() - job.last_seen > HEARTBEAT_S:
                        job.cancel("its page stopped asking for progress")
                    job.paused = self.gate.chat_busy
                    if not self.gate.wait_idle(job.stop, quiet=QUIET_AFTER_CHAT_S):
                        break
                    job.paused = False
                    begun = time.monotonic()
                    try:
                        results, _ = evaluate(answerer, [item])
                    except Preempted:
                        continue  # a chat question came first: ask this one again after it
                    job.durations.append(time.monotonic() - begun)
                    job.results.extend(results)
                    job.done += 1
                    break
                if job.stop.is_set():
                    job.state = "cancelled"
                    return
            job.summary = summarise(job.results)
            job.report = write_report(Path(tempfile.mkdtemp(prefix="qa-eval-")), job.results, job.summary,
                                      "default", job.testset)
            job.state = "done"
        except Exception as error:  # shown in the page as one line
            lines = str(error).strip().splitlines()
            job.error = lines[0] if lines else error.__class__.__name__
            job.state = "failed"
        finally:
            job.paused = False
            job.stopped_at = time.monotonic()


def minutes(seconds: float | None) -> str:
    """'about 3 min', 'about 40 s', 'a few seconds'."""
    if seconds is None or math.isnan(seconds):
        return ""
    if seconds < 10:
        return "a few seconds"
    if seconds < 90:
        return f"about {int(round(seconds / 10.0) * 10)} s"
    return f"about {int(round(seconds / 60.0))} min"
