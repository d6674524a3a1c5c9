"""The `qa` command: index, search, ask, eval, serve.

Library errors (QAError) become one line on stderr and exit code 1; bad arguments exit 2
(argparse). Progress goes to stderr so stdout stays clean for --json and batch output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import config
from .errors import DocumentError, DuplicateDocumentError, QAError, QuestionError


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _service(args):
    from .answer import AnswerSettings
    from .service import Service

    overrides = {}
    for name in ("k", "mode"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    limits = None
    if getattr(args, "answer_timeout", None) is not None:
        from .limits import Limits

        limits = Limits(generation_timeout_s=args.answer_timeout)
    return Service(
        index_path=args.index,
        limits=limits,
        embedder_path=args.embedder,
        generator_path=getattr(args, "model", None),
        settings=AnswerSettings(**overrides),
        llm_url=getattr(args, "llm_url", None),
        llm_model=getattr(args, "llm_model", None),
        llm_timeout=getattr(args, "llm_timeout", None),
    )


# --------------------------------------------------------------------------- commands


def cmd_index(args) -> int:
    from tqdm import tqdm

    service = _service(args)
    paths = args.paths or [config.corpus_dir()]
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="embedding paragraphs", unit="para", file=sys.stderr,
                       disable=total < 200)
        bar.n = done
        bar.refresh()

    started = time.perf_counter()
    if args.add:
        if not args.paths:
            raise DocumentError("give the files to add: qa index --add FILE...")
        try:
            index = service.add_documents(args.paths, progress, replace=args.replace)
        except DuplicateDocumentError as error:
            raise QAError(f"{error}: add --replace to replace {'it' if len(error.names) == 1 else 'them'}, "
                          f"or rename the file") from None
    else:
        index = service.build(paths, progress)
    if bar:
        bar.close()
    m = index.manifest
    _err(
        f"indexed {m['count']} paragraphs from {len(m['sources'])} document(s) into {service.index_path} "
        f"({m['embedded']} embedded, {m['reused']} reused, {time.perf_counter() - started:.1f} s)"
    )
    # Say what changed, so that a rebuild from fewer files never drops documents unnoticed.
    changes = m.get("changes", {})
    for key in ("added", "replaced"):
        if changes.get(key):
            _err(f"{key}: {', '.join(changes[key])}")
    if changes.get("dropped"):
        _err(f"dropped (not among the paths given): {', '.join(changes['dropped'])} — "
             f"`qa index --add FILE...` adds documents without dropping any")
    for warning in service.warnings:
        _err(f"warning: {warning}")
    return 0


def cmd_search(args) -> int:
    service = _service(args)
    hits = service.index.search(args.query, k=args.k or 5, mode=args.mode or "hybrid",
                                dense_weight=service.settings.dense_weight, fusion=service.settings.fusion)
    if args.json:
        print(json.dumps([
            {"rank": h.rank, "id": h.paragraph.id, "label": h.paragraph.label, "document": h.paragraph.document,
             "section": h.paragraph.section, "score": round(h.score, 4), "dense": round(h.dense, 4),
             "lexical": round(h.lexical, 4), "text": h.paragraph.text}
            for h in hits
        ], ensure_ascii=False, indent=2))
        return 0
    for h in hits:
        p = h.paragraph
        snippet = p.text if len(p.text) <= 160 else p.text[:157] + "…"
        print(f"{h.rank}. {p.label:<8} {h.score:.3f}  {p.document} — {p.section}\n   {snippet}")
    return 0


def _answer_json(answer, seconds: float, qid=None) -> dict:
    return {
        "id": qid,
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "citations": [{"id": c.id, "label": c.label, "document": c.document, "page": c.page, "text": c.text}
                      for c in answer.citations],
        "passages": [{"id": p.id, "label": p.label, "text": p.text, "score": round(p.score, 4)} for p in answer.passages],
        "seconds": round(seconds, 3),
        "reason": answer.reason,
        "timings": {k: round(v, 3) for k, v in answer.timings.items()},
        "trace": answer.trace,
    }


def cmd_ask(args) -> int:
    from .answer import VerifiedSentence
    from .limits import check_question

    if args.question is None and not args.batch:
        raise QuestionError("give a question, or --batch FILE.jsonl")
    # Checked before the service exists: a refused question never waits for a model.
    question = None if args.batch else check_question(args.question)
    service = _service(args)
    if args.batch:
        return _ask_batch(service, Path(args.batch))
    answerer = service.answerer(progress=_err)
    started = time.perf_counter()
    answer, shown = None, 0
    for item in answerer.stream(question):
        if isinstance(item, VerifiedSentence):
            if not args.json:  # each sentence as soon as it has passed the checks
                print(("" if shown == 0 else " ") + item.text, end="", flush=True)
                shown += 1
        else:
            answer = item
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(_answer_json(answer, seconds), ensure_ascii=False, indent=2))
        return 0
    print("" if shown else answer.text)
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            where = f"{c.document}, p. {c.page}" if c.page else c.document
            print(f"  [{c.label}] {where} — {c.section}: {c.text[:200]}{'…' if len(c.text) > 200 else ''}")
    elif answer.reason:
        print(f"\n({answer.reason})")
    return 0


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else error.__class__.__name__


def _ask_batch(service, path: Path) -> int:
    """Answer every good line; every bad line gets an {"id", "line", "error"} record instead."""
    from .batch import parse_batch
    from .errors import TestSetError

    if not path.is_file():
        raise TestSetError(f"{path}: no such file")
    lines = parse_batch(path.read_bytes(), service.limits)  # bytes: one bad byte fails one line
    if not lines:
        raise TestSetError(f"{path}: no questions in the file")
    # Models load only when there is something to answer.
    answerer = service.answerer(progress=_err) if any(not line.error for line in lines) else None
    failed = []
    for number, line in enumerate(lines, 1):
        started = time.perf_counter()
        if not line.error:
            try:
                answer = answerer.ask(line.question, line.history)
                record = _answer_json(answer, time.perf_counter() - started, line.id)
            except QAError as error:
                line.error = _first_line(error)
            except Exception as error:  # a bug on one line must not lose the rest of the batch
                line.error = f"internal error ({error.__class__.__name__}: {_first_line(error)})"
        if line.error:
            failed.append(line.number)
            record = {"id": line.id, "line": line.number, "error": line.error}
            _err(f"[{number}/{len(lines)}] {path.name}:{line.number}: error: {line.error}")
        else:
            _err(f"[{number}/{len(lines)}] {record['seconds']:.1f} s  {line.question[:70]}")
        print(json.dumps(record, ensure_ascii=False), flush=True)
    summary = f"batch: {len(lines)} question(s), {len(lines) - len(failed)} answered, {len(failed)} failed"
    if failed:
        shown = ", ".join(map(str, failed[:20])) + (", …" if len(failed) > 20 else "")
        summary += f" (line {shown})"
    _err(summary)
    return 1 if failed else 0


def cmd_eval(args) -> int:
    from .evaluate import run_cli

    return run_cli(args, _service(args))


def cmd_serve(args) -> int:
    from .ui import launch

    launch(_service(args), host=args.host, port=args.port, share_network=args.network)
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Ask questions about documents, answered offline with citations.")
    parser.add_argument("--index", type=Path, default=None, help="index folder (default: index/default)")
    parser.add_argument("--embedder", type=Path, default=None, help="a sentence-transformers model folder")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build the index from documents (default: the bundled corpus)")
    p.add_argument("paths", nargs="*", type=Path)
    p.add_argument("--add", action="store_true", help="add the files to the current index instead of rebuilding it")
    p.add_argument("--replace", action="store_true", help="with --add: replace indexed documents of the same name")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="show the paragraphs that match a query")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=None)
    p.add_argument("--mode", choices=["dense", "lexical", "hybrid"], default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    for name, func, text in (("ask", cmd_ask, "answer a question with citations"),
                             ("eval", cmd_eval, "evaluate on a test set"),
                             ("serve", cmd_serve, "start the web chat")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--model", type=Path, default=None, help="qwen-0.5b (default), qwen-1.5b (`make install-large`), or a local transformers model folder")
        p.add_argument("--llm-url", default=None, metavar="URL",
                       help="generate on an OpenAI-compatible server instead, e.g. http://127.0.0.1:8080/v1 "
                            "(`make serve-llm`); its key, if any, in $QA_LLM_API_KEY")
        p.add_argument("--llm-model", default=None, metavar="NAME", help="the model name to ask that server for")
        p.add_argument("--llm-timeout", type=float, default=None, metavar="S",
                       help="longest wait for the server, in seconds (default 60)")
        p.add_argument("--answer-timeout", type=float, default=None, metavar="S",
                       help="stop generating an answer after S seconds, with a message (default 60)")
        p.add_argument("-k", type=int, default=None, help="passages given to the model")
        p.add_argument("--mode", choices=["dense", "lexical", "hybrid"], default=None)
        p.set_defaults(func=func)
        if name == "ask":
            p.add_argument("question", nargs="?")
            p.add_argument("--json", action="store_true")
            p.add_argument("--batch", type=Path, help="JSONL file: one {id, question, history?} per line")
        elif name == "eval":
            p.add_argument("testset", type=Path, nargs="?", default=None)
            p.add_argument("--out", type=Path, default=None, help="report folder (default: reports/<time>)")
            p.add_argument("--compare", nargs="*", default=None,
                           help="configurations to compare, e.g. mode=dense mode=hybrid k=5")
            p.add_argument("--retrieval-only", action="store_true", help="skip generation")
            p.add_argument("--limit", type=int, default=None, help="first N questions only")
            p.add_argument("--replay", type=Path, default=None,
                           help="an earlier run's results.jsonl: check its recorded drafts again (no generation)")
        else:
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=7860)
            p.add_argument("--network", action="store_true", help="listen on all interfaces (0.0.0.0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    config.set_offline()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "replace", False) and not args.add:
        parser.error("--replace only goes with --add (a full `qa index` rebuild replaces everything)")
    if getattr(args, "llm_url", None) and getattr(args, "model", None):
        parser.error("--model and --llm-url exclude each other: the server decides its model (--llm-model)")
    if (getattr(args, "llm_model", None) or getattr(args, "llm_timeout", None)) and not getattr(args, "llm_url", None):
        parser.error("--llm-model and --llm-timeout go with --llm-url")
    if getattr(args, "llm_timeout", None) is not None and args.llm_timeout <= 0:
        parser.error("--llm-timeout must be positive")
    if getattr(args, "answer_timeout", None) is not None and args.answer_timeout <= 0:
        parser.error("--answer-timeout must be positive")
    try:
        return args.func(args)
    except QAError as error:
        _err(f"qa {args.command}: error: {error}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
