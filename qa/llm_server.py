"""A local OpenAI-compatible generation server: llama.cpp (via xllamacpp) on loopback.

    make serve-llm                      # or: python -m qa.llm_server [--port 8080] [--parallel 4]
    qa ask "..." --llm-url http://127.0.0.1:8080/v1

It serves the packaged GGUF as it is (`models.prepare_gguf`: joined from its packages and
hash-checked, never de-quantised), so it starts in seconds with about half the memory of the
in-process transformers model, and answers several users at once (`--parallel` slots,
continuous batching). The optional extra `pip install -e '.[server]'` brings xllamacpp, a
prebuilt wheel (llama-cpp-python would be a long source build: see README).

The server binds 127.0.0.1 unless --host says otherwise; it never downloads anything.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

from .errors import ModelError, QAError

DEFAULT_PORT = 8080
# Four slots: the chat's users mostly read, so four questions generating at once covers a
# small team; each slot holds its own KV cache (about 50 MB at 4,096 tokens for the 0.5B).
DEFAULT_PARALLEL = 4
# Per slot: the longest prompt is the system turn with five sentences plus 8,000 characters
# of history (limits.py), about 2,500 tokens, plus the answer.
CONTEXT_PER_SLOT = 4096
# The in-process generator's penalty (models.REPETITION_PENALTY). llama.cpp, like ours,
# penalises only the answer's own tokens; set here so that any client gets it.
REPETITION_PENALTY = 1.1
READY_TIMEOUT_S = 60.0  # the 0.5B loads in ~3 s on a busy machine; a 60 s wait means something is wrong


def default_threads() -> int:
    """Half the cores, at least one (QA_THREADS overrides).

    llama.cpp's threads spin while they wait for each other: when they take every core and
    anything else runs (the app's embedder, another user's process), decoding collapses —
    measured on 2 cores: 2 threads under contention 0.3 tokens/s, 1 thread 47 tokens/s
    (../shared/MODELS.md). Half the cores leaves the rest to the app on the same machine.
    """
    configured = int(os.environ.get("QA_THREADS", "0") or 0)
    return configured if configured > 0 else max(1, min(8, (os.cpu_count() or 2) // 2))


def _xllamacpp():
    try:
        import xllamacpp
    except ImportError:
        raise ModelError("the llama.cpp server is an optional extra: `make serve-llm`, or "
                         "pip install -e '.[server]' (xllamacpp)") from None
    return xllamacpp


def start(gguf: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT, threads: int | None = None,
          parallel: int = DEFAULT_PARALLEL, context_per_slot: int = CONTEXT_PER_SLOT, quiet: bool = True):
    """Start the server in this process and wait until it answers /health.

    Returns (server, base URL ending in /v1); the server stops when the object is deleted.
    """
    x = _xllamacpp()
    params = x.CommonParams()
    params.model.path = str(gguf)
    params.hostnames = [host]
    params.port = int(port)
    params.n_parallel = int(parallel)
    params.n_ctx = int(context_per_slot) * int(parallel)  # llama.cpp splits n_ctx among the slots
    threads = threads or default_threads()
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.sampling.penalty_repeat = REPETITION_PENALTY
    params.warmup = False  # a warm-up decode costs a second at every start and proves nothing here
    if quiet:
        params.verbosity = -1  # llama.cpp logs every slot event; errors still show
    try:
        server = x.Server(params)
    except Exception as error:  # a bad file or a port in use: one line
        raise ModelError(f"the llama.cpp server did not start on {host}:{port}: {error}") from None
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            del server
            raise ModelError(f"the llama.cpp server on {host}:{port} did not become ready within {READY_TIMEOUT_S:g} s")
        time.sleep(0.2)
    return server, f"{url}/v1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.llm_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--model", default="qwen-0.5b", help="a packaged generator (qwen-0.5b, qwen-1.5b) or a .gguf file")
    parser.add_argument("--threads", type=int, default=None, help=f"CPU threads (default: half the cores, here {default_threads()})")
    parser.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, help="questions generated at once (slots)")
    parser.add_argument("--verbose", action="store_true", help="llama.cpp's own log")
    args = parser.parse_args(argv)
    from . import config
    from .models import GENERATORS, prepare_gguf

    config.set_offline()
    try:
        if args.model in GENERATORS:
            gguf = prepare_gguf(lambda m: print(m, file=sys.stderr), GENERATORS[args.model])
        else:
            gguf = Path(args.model)
            if not gguf.is_file():
                raise ModelError(f"{gguf}: no such GGUF file")
        started = time.perf_counter()
        server, url = start(gguf, args.host, args.port, args.threads, args.parallel, quiet=not args.verbose)
    except QAError as error:
        print(f"qa llm-server: error: {error}", file=sys.stderr)
        return 1
    print(f"llama.cpp server ready in {time.perf_counter() - started:.1f} s at {url} "
          f"({args.threads or default_threads()} thread(s), {args.parallel} slot(s)); "
          f"use: qa ask --llm-url {url} \"...\"   (Ctrl-C stops it)", file=sys.stderr, flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
