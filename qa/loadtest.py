"""Many simulated chat users against a running `qa serve` (loopback only, bounded).

    python -m qa.loadtest --url http://127.0.0.1:7860/ --users 8 [--questions 3] [--pid PID ...]

Each user sends test-set questions through the app's `/ask` API, all users starting at the
same moment, each asking its next question when the last one is answered (--questions per
user, 1 by default); the run reports p50/p95 time to the first checked sentence and to the whole answer, errors
(and how many said "busy"), and the RSS of the processes given with --pid (the app, the
model server). Bounded in count (at most 64 users) and time (--time-limit): it stops by
itself, and it refuses any address but a loopback one.

Time to the first checked sentence is the client's whole-answer time less what the answer's
own timings say came after its first verified sentence (the /ask API returns the answer
whole, as the chat's events are private).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ipaddress
import sys
import threading
import time
from urllib.parse import urlsplit

MAX_USERS = 64
MAX_QUESTIONS = 10  # per user


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run(url: str, users: int, time_limit: float, questions: list[str], per_user: int = 1) -> dict:
    from gradio_client import Client

    clients = [Client(url, verbose=False) for _ in range(users)]  # connected before the clock starts
    barrier = threading.Barrier(users)
    stop = threading.Event()  # the time limit: no user starts another question past it

    def ask(client, question: str) -> dict:
        started = time.perf_counter()
        try:
            reply = client.predict(question, "", api_name="/ask")
        except Exception as error:  # what a user would see: counted, never a crash of the run
            return {"error": str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__}
        whole = time.perf_counter() - started
        timings = reply.get("timings", {})
        after_first = timings.get("total", 0) - timings.get("first_verified", timings.get("total", 0))
        return {"whole": whole, "first": whole - after_first}

    def user(number: int) -> list[dict]:
        barrier.wait(timeout=30)
        asked = []
        for turn in range(per_user):
            if stop.is_set():
                break
            asked.append(ask(clients[number], questions[(number * per_user + turn) % len(questions)]))
        return asked

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=users)
    futures = [pool.submit(user, n) for n in range(users)]
    done, _ = concurrent.futures.wait(futures, timeout=time_limit)
    stop.set()
    pool.shutdown(wait=False)  # the run ends at its limit, not when a stuck request returns
    results = [r for f in done for r in f.result()]
    # A user still waiting at the time limit: each of its questions counts as not answered in time.
    unanswered = users * per_user - len(results)
    errors = [r["error"] for r in results if "error" in r] + ["time limit"] * unanswered
    whole = [r["whole"] for r in results if "whole" in r]
    first = [r["first"] for r in results if "first" in r]
    return {"users": users, "questions": users * per_user, "answered": len(whole), "errors": len(errors),
            "busy": sum("busy" in e.lower() or "queue is full" in e.lower() for e in errors),
            "error_examples": sorted(set(errors))[:3],
            "first_p50": _percentile(first, 0.5), "first_p95": _percentile(first, 0.95),
            "whole_p50": _percentile(whole, 0.5), "whole_p95": _percentile(whole, 0.95)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--users", default="1,8", help="comma-separated user counts, run one after the other")
    parser.add_argument("--questions", type=int, default=1, help="questions each user asks, one after another")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per run, at most")
    parser.add_argument("--pid", type=int, nargs="*", default=[], help="processes whose RSS to report")
    args = parser.parse_args(argv)
    if not _loopback(args.url):
        print("qa loadtest: error: only loopback addresses (127.0.0.1, localhost, ::1) are load-tested", file=sys.stderr)
        return 2
    counts = [int(n) for n in args.users.split(",")]
    if any(not 1 <= n <= MAX_USERS for n in counts):
        print(f"qa loadtest: error: users must be between 1 and {MAX_USERS}", file=sys.stderr)
        return 2
    if not 1 <= args.questions <= MAX_QUESTIONS:
        print(f"qa loadtest: error: questions per user must be between 1 and {MAX_QUESTIONS}", file=sys.stderr)
        return 2
    from .evaluate import DEFAULT_TESTSET, load_testset

    questions = [item.question for item in load_testset(DEFAULT_TESTSET) if item.answerable and not item.history]
    print("| users | questions | answered | errors (busy) | first checked sentence p50 / p95 (s) | whole answer p50 / p95 (s) | "
          "RSS (MB) |\n|---|---|---|---|---|---|---|")
    for users in counts:
        r = run(args.url, users, args.time_limit, questions, args.questions)
        rss = ", ".join(f"{_rss_mb(pid):.0f}" for pid in args.pid) or "–"
        print(f"| {users} | {r['questions']} | {r['answered']} | {r['errors']} ({r['busy']}) | {r['first_p50']:.2f} / {r['first_p95']:.2f} | "
              f"{r['whole_p50']:.2f} / {r['whole_p95']:.2f} | {rss} |", flush=True)
        for example in r["error_examples"]:
            print(f"  error: {example}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
