"""Speed benchmarks, printed side by side: `python -m qa.bench` (or `make bench`).

1. Indexing: paragraphs/second of `build_index` against raw `SentenceTransformer.encode` on
   the same texts (the limit the index can reach).
2. Query latency: median and p95 of a hybrid search (query embedding included) over 1k, 10k
   and 100k paragraphs. The large indexes use synthetic text and random unit vectors: search
   cost depends on the size, not on where the vectors came from.
3. Answers: median time to first token, to the first verified sentence and to the whole
   answer on the test set's answerable questions, and the pipeline's overhead over calling
   the model's `generate` directly on the very same prompt.
4. `python -m qa.bench documents`: the document-layout check (qa/layout_check.py).
5. `python -m qa.bench polarity`: true sentences of every shipped document, falsified
   (polarity turned, a number or a name swapped), must be rejected by the verifier
   (qa/polarity_check.py).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import config


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _synthetic_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocabulary = ("state council prevention atrocity genocide assembly report member dialogue panel "
                  "accountability veto initiative early warning human rights court justice peace "
                  "development agenda mandate review framework protection civilians crimes "
                  "security resolution support implementation national regional").split()
    return [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(40, 90))) + "." for _ in range(n)]


def bench_indexing(embedder, n: int = 512) -> dict:
    from .documents import Document, Paragraph
    from .store import build_index

    texts = _synthetic_texts(n, seed=1)
    paragraphs = [Paragraph(f"synthetic#{i}", "synthetic.txt", f"¶{i}", i, "", t) for i, t in enumerate(texts)]
    document = Document(Path("synthetic.txt"), "synthetic", "0" * 64, paragraphs)
    embedder.encode(texts[:32])  # warm-up
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=False)
    raw = n / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        build_index([document], embedder, Path(folder) / "ix")
        ours = n / (time.perf_counter() - started)
    return {"paragraphs": n, "raw_encode_per_s": raw, "build_index_per_s": ours, "ratio": ours / raw}


def bench_queries(embedder, sizes=(1_000, 10_000, 100_000), queries: int = 50) -> list[dict]:
    from .documents import Paragraph
    from .store import ParagraphIndex

    rng = np.random.default_rng(0)
    rows = []
    for size in sizes:
        # New questions for every size: the embedder remembers recent questions, and a
        # remembered one would leave the query embedding out of the timing.
        questions = [" ".join(q.split()[:10]) for q in _synthetic_texts(queries + 1, seed=7 + size)]
        texts = _synthetic_texts(size, seed=size)
        vectors = rng.standard_normal((size, embedder.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        paragraphs = [Paragraph(f"s#{i}", "s.txt", f"¶{i}", i, "", t) for i, t in enumerate(texts)]
        started = time.perf_counter()
        index = ParagraphIndex(paragraphs, vectors, embedder, {"sources": []})
        load_s = time.perf_counter() - started
        index.search(questions[0], k=5)  # warm-up
        times = []
        for q in questions[1:]:
            started = time.perf_counter()
            index.search(q, k=5)
            times.append(time.perf_counter() - started)
        rows.append({"paragraphs": size, "median_ms": 1000 * statistics.median(times),
                     "p95_ms": 1000 * _percentile(times, 0.95), "bm25_build_s": load_s})
    return rows


def bench_answers(service, limit: int = 12, repeats: int = 3) -> dict:
    """Pipeline vs plain `generate` on the same prompt. Each is run `repeats` times per
    question in alternating order and the fastest run kept: on a laptop CPU, run-to-run noise
    (frequency scaling, other processes) is larger than the effect being measured."""
    from .evaluate import DEFAULT_TESTSET, load_testset

    answerer = service.answerer(progress=lambda m: print(m, file=sys.stderr))
    generator = service.generator()
    items = [i for i in load_testset(DEFAULT_TESTSET) if i.answerable][:limit]
    answerer.ask(items[0].question)  # warm-up
    first, shown, total, direct, pipeline = [], [], [], [], []
    for item in items:
        history = list(item.history)
        answers, plain = [], []
        for repeat in range(repeats):
            for which in (("pipeline", "direct") if repeat % 2 == 0 else ("direct", "pipeline")):
                if which == "pipeline":
                    answers.append(answerer.ask(item.question, history))
                else:
                    messages = answerer.messages(item.question, answerer.retrieve_passages(item.question, history), history)
                    started = time.perf_counter()
                    generator.generate_direct(messages, answerer.settings.max_new_tokens)
                    plain.append(time.perf_counter() - started)
        if "first_token" not in answers[0].timings:
            continue  # declined before generating: nothing to compare
        best = min(answers, key=lambda a: a.timings["total"])
        first.append(min(a.timings["first_token"] for a in answers))
        shown.append(min(a.timings.get("first_verified", a.timings["total"]) for a in answers))
        total.append(best.timings["total"])
        direct.append(min(plain))
        pipeline.append(best.timings["total"])
    overhead = (sum(pipeline) - sum(direct)) / sum(direct)
    per_question = statistics.median(p / d - 1 for p, d in zip(pipeline, direct))
    return {"questions": len(first), "median_first_token_s": statistics.median(first),
            "median_first_verified_s": statistics.median(shown),
            "median_total_s": statistics.median(total), "p95_total_s": _percentile(total, 0.95),
            "median_direct_generate_s": statistics.median(direct), "pipeline_overhead": overhead,
            "median_question_overhead": per_question}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["documents"]:  # the document-layout check: no models needed
        from .layout_check import run

        return run()
    if argv[:1] == ["polarity"]:  # the verifier against falsified sentences: no models needed
        from .polarity_check import check_documents, table

        documents = [config.corpus_dir() / p.name for p in sorted(config.corpus_dir().iterdir())]
        documents += sorted((config.REPO_ROOT / "testsets" / "docs").iterdir())
        print(table(check_documents(documents)))
        return 0
    parser = argparse.ArgumentParser(prog="python -m qa.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-answers", action="store_true")
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args(argv)
    config.set_offline()
    from .service import Service

    service = Service()
    embedder = service.embedder
    import torch

    print(f"# qa bench — {torch.get_num_threads()} torch threads, {embedder.name}\n")
    row = bench_indexing(embedder)
    print("## Indexing")
    print("| paragraphs | raw encode (para/s) | qa index (para/s) | ratio |\n|---|---|---|---|")
    print(f"| {row['paragraphs']} | {row['raw_encode_per_s']:.0f} | {row['build_index_per_s']:.0f} | {row['ratio']:.0%} |\n")
    print("## Query latency (hybrid, k=5, query embedding included)")
    print("| paragraphs | median ms | p95 ms | BM25 build at load (s) |\n|---|---|---|---|")
    for r in bench_queries(embedder, tuple(int(s) for s in args.sizes.split(","))):
        print(f"| {r['paragraphs']:,} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | {r['bm25_build_s']:.2f} |")
    if not args.skip_answers:
        a = bench_answers(service)
        print("\n## Answers (warm, test-set questions that reached the model)")
        print("| questions | median first token (s) | median first verified sentence (s) | median answer (s) | "
              "p95 answer (s) | median direct generate (s) | pipeline overhead (total) | (median per question) |\n"
              "|---|---|---|---|---|---|---|---|")
        print(f"| {a['questions']} | {a['median_first_token_s']:.2f} | {a['median_first_verified_s']:.2f} | "
              f"{a['median_total_s']:.2f} | "
              f"{a['p95_total_s']:.2f} | {a['median_direct_generate_s']:.2f} | {a['pipeline_overhead']:+.1%} | "
              f"{a['median_question_overhead']:+.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
