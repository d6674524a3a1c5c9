"""Speed benchmarks, printed side by side: `python -m qa.bench` (or `make bench`).

1. Indexing: paragraphs/second of `build_index` against raw `SentenceTransformer.encode` on
   the same texts (the limit the index can reach).
2. Retrieval at scale (`python -m qa.bench retrieval [--sizes 1000,10000,100000]`, no model
   needed): for synthetic paragraphs and clustered unit vectors (real embeddings cluster by
   topic; uniformly random ones have no near neighbours to find), the index build without
   embedding, the index load time, hybrid query p50/p95 with the question's vector given
   (embedding excluded), recall@10 of the FAISS index against exact search, memory.
3. Answers: median time to first token, to the first verified sentence and to the whole
   answer on the test set's answerable questions, and the pipeline's overhead over calling
   the model's `generate` directly on the very same prompt. With `--llm-url URL` the same
   questions go to an OpenAI-compatible server instead (no direct baseline there).
   `python -m qa.loadtest` simulates many chat users against `qa serve` (bounded, loopback).
4. `python -m qa.bench documents [--misses]`: the document-layout check (qa/layout_check.py): the
   shipped expected files, then the blind annotation; `--misses` lists each disagreement.
5. `python -m qa.bench polarity`: true sentences of every shipped document, falsified
   (polarity turned, a number or a name swapped), must be rejected by the verifier
   (qa/polarity_check.py).
6. `python -m qa.bench caps`: a 2 MB one-line document, a 100 KB history and a 100 KB
   question, each answered or refused within 10 s, RSS under 2.6 GB (qa/caps_check.py).
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


class _GivenVectors:
    """An 'embedder' that hands out precomputed vectors in order: build_index embeds a fresh
    index's paragraphs in order, so the real build path runs with synthetic vectors."""

    name = "synthetic"
    sha256 = "5" * 64

    def __init__(self, vectors: np.ndarray):
        self.vectors, self.dimension, self.next = vectors, vectors.shape[1], 0

    def encode(self, texts, progress=False):
        rows = self.vectors[self.next:self.next + len(texts)]
        self.next += len(texts)
        return rows


def _zipf_texts(n: int, seed: int = 0, vocabulary: int = 50_000) -> list[str]:
    """Paragraphs of 40-90 pseudo-words drawn with Zipf's law from a large vocabulary, as real
    text is: a 40-word vocabulary (`_synthetic_texts`) puts every query word in almost every
    paragraph and makes BM25 far slower than on any real collection."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(letters[rng.integers(0, 26, rng.integers(4, 10))]) for _ in range(vocabulary)]
    weights = 1.0 / np.arange(1, vocabulary + 1)
    lengths = rng.integers(40, 91, n)
    drawn = rng.choice(vocabulary, size=int(lengths.sum()), p=weights / weights.sum())
    texts, start = [], 0
    for length in lengths:
        texts.append(" ".join(words[i] for i in drawn[start:start + length]) + ".")
        start += length
    return texts


def _clustered_vectors(n: int, dimension: int, rng) -> np.ndarray:
    # Topics: one centre per 100 paragraphs, each paragraph its centre plus noise of about
    # the centre's own length, so neighbours are near but not duplicates.
    centres = rng.standard_normal((max(10, n // 100), dimension)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = centres[rng.integers(0, len(centres), n)]
    vectors += rng.standard_normal((n, dimension)).astype(np.float32) * 0.06
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_retrieval(sizes=(1_000, 10_000, 100_000), queries: int = 200, dimension: int = 384) -> list[dict]:
    """Build (no embedding), load, query (embedding excluded) and recall, per size."""
    import faiss

    from .documents import Document, Paragraph
    from .store import build_index, load_index

    rows = []
    for size in sizes:
        rng = np.random.default_rng(size)
        vectors = _clustered_vectors(size, dimension, rng)
        texts = _zipf_texts(size, seed=size)
        paragraphs = [Paragraph(f"s#{i}", "s.txt", f"¶{i}", i, "", t) for i, t in enumerate(texts)]
        document = Document(Path("s.txt"), "s", "0" * 64, paragraphs)
        picked = rng.integers(0, size, queries)
        query_vectors = vectors[picked] + rng.standard_normal((queries, dimension)).astype(np.float32) * 0.06
        query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True)
        questions = [" ".join(texts[i].split()[:8]) for i in picked]
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "ix"
            started = time.perf_counter()
            build_index([document], _GivenVectors(vectors), target)
            build_s = time.perf_counter() - started
            disk_mb = sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) / 2**20
            del document, paragraphs, texts
            before = _rss_mb()
            started = time.perf_counter()
            index = load_index(target, _GivenVectors(vectors[:0]))
            load_s = time.perf_counter() - started
            loaded_mb = _rss_mb() - before
            verify_s = 0.0
            if index.verification is not None:  # a large index hashes its files in the background
                index.verification.wait()
                verify_s = time.perf_counter() - started
                index.check_integrity()
            answerer_s, answerer_mb, first_question_s = _answerer_start(index, questions[0])
            index.search(questions[0], k=5, query_vector=query_vectors[0])  # warm-up
            times = []
            for question, vector in zip(questions, query_vectors):
                started = time.perf_counter()
                index.search(question, k=5, query_vector=vector)
                times.append(time.perf_counter() - started)
            # Recall of the FAISS index as the search uses it (50 candidates), top 10 against exact.
            exact = faiss.IndexFlatIP(dimension)
            exact.add(vectors)
            _, truth = exact.search(query_vectors, 10)
            _, found = index.faiss_index.search(query_vectors, 50)
            recall = float(np.mean([len(set(f[:10]) & set(t)) / 10 for f, t in zip(found, truth)]))
            sweep = {}
            if index.manifest["faiss"]["type"] == "ivf":  # what other numbers of probes would give
                lists = index.manifest["faiss"]["lists"]
                for probes in sorted({p for p in (4, 8, 16, 32, 64, 128) if p <= lists} | {index.faiss_index.nprobe}):
                    index.faiss_index.nprobe = probes
                    spent = []
                    for vector in query_vectors:
                        started = time.perf_counter()
                        _, ids = index.faiss_index.search(vector.reshape(1, -1), 50)
                        spent.append(time.perf_counter() - started)
                    _, found = index.faiss_index.search(query_vectors, 50)
                    sweep[probes] = (float(np.mean([len(set(f[:10]) & set(t)) / 10 for f, t in zip(found, truth)])),
                                     1000 * statistics.median(spent))
            rows.append({"paragraphs": size, "faiss": index.manifest["faiss"]["type"], "build_s": build_s,
                         "load_s": load_s, "verify_s": verify_s, "median_ms": 1000 * statistics.median(times),
                         "p95_ms": 1000 * _percentile(times, 0.95), "recall_at_10": recall,
                         "rss_mb": loaded_mb, "disk_mb": disk_mb, "probe_sweep": sweep,
                         "answerer_s": answerer_s, "answerer_mb": answerer_mb, "first_question_s": first_question_s})
            del index, exact
    return rows


class _RandomVectors:
    """Unit vectors for any text: the answerer embeds passage sentences, which the
    benchmark's given vectors do not cover (their values do not matter for the timing)."""

    name = "synthetic"
    sha256 = "5" * 64

    def __init__(self, dimension: int):
        self.dimension, self.rng = dimension, np.random.default_rng(0)

    def encode(self, texts, progress=False):
        vectors = self.rng.standard_normal((len(texts), self.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class _OneSentence:
    """A generator that answers at once: the start-up benchmark times the answer side's own work."""

    name = "one-sentence"

    def stream(self, messages, max_new_tokens=120):
        yield "It does."


def _answerer_start(index, question: str) -> tuple[float, float, float]:
    """Seconds and MB the answer side takes to start over a loaded index, and the seconds of
    its first question (the generator answers at once; the question's embedding included)."""
    from .answer import Answerer

    embedder, index.embedder = index.embedder, _RandomVectors(index.faiss_index.d)
    try:
        before = _rss_mb()
        started = time.perf_counter()
        answerer = Answerer(index, _OneSentence())
        start_s, start_mb = time.perf_counter() - started, _rss_mb() - before
        started = time.perf_counter()
        answerer.ask(question)
        return start_s, start_mb, time.perf_counter() - started
    finally:
        index.embedder = embedder


def print_retrieval(rows: list[dict]) -> None:
    print("## Retrieval at scale (synthetic clustered vectors; hybrid k=5, query embedding excluded)")
    print("| paragraphs | FAISS | build, no embedding (s) | load (s) | verified in background by (s) | query p50 (ms) | "
          "p95 (ms) | recall@10 vs exact | RSS after load (MB) | on disk (MB) |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['paragraphs']:,} | {r['faiss']} | {r['build_s']:.1f} | {r['load_s']:.2f} | "
              f"{r['verify_s']:.1f} | {r['median_ms']:.2f} | "
              f"{r['p95_ms']:.2f} | {r['recall_at_10']:.3f} | {r['rss_mb']:.0f} | {r['disk_mb']:.0f} |", flush=True)
    print("\n| paragraphs | answer side starts in (s) | its memory (MB) | first question, generator excluded (s) |"
          "\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['paragraphs']:,} | {r['answerer_s']:.2f} | {r['answerer_mb']:.0f} | {r['first_question_s']:.2f} |")
    for r in rows:
        if r.get("probe_sweep"):
            print(f"\nIVF at {r['paragraphs']:,}: probes → recall@10, dense search p50: " + ", ".join(
                f"{probes} → {recall:.3f}, {ms:.2f} ms" for probes, (recall, ms) in r["probe_sweep"].items()), flush=True)


def bench_answers(service, limit: int = 12, repeats: int = 3) -> dict:
    """Pipeline vs plain `generate` on the same prompt. Each is run `repeats` times per
    question in alternating order and the fastest run kept: on a laptop CPU, run-to-run noise
    (frequency scaling, other processes) is larger than the effect being measured."""
    from .evaluate import DEFAULT_TESTSET, load_testset

    answerer = service.answerer(progress=lambda m: print(m, file=sys.stderr))
    generator = service.generator()
    has_direct = hasattr(generator, "generate_direct")  # a server backend has no such baseline
    items = [i for i in load_testset(DEFAULT_TESTSET) if i.answerable][:limit]
    if not has_direct:
        repeats = 1  # a server caches each prompt: a repeat would skip the prompt processing
    answerer.ask(items[0].question)  # warm-up
    first, shown, total, direct, pipeline = [], [], [], [], []
    for item in items:
        history = list(item.history)
        answers, plain = [], []
        for repeat in range(repeats):
            for which in (("pipeline", "direct") if repeat % 2 == 0 else ("direct", "pipeline")):
                if which == "pipeline":
                    answers.append(answerer.ask(item.question, history))
                elif has_direct:
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
        if plain:
            direct.append(min(plain))
        pipeline.append(best.timings["total"])
    overhead = (sum(pipeline) - sum(direct)) / sum(direct) if direct else float("nan")
    per_question = statistics.median(p / d - 1 for p, d in zip(pipeline, direct)) if direct else float("nan")
    return {"questions": len(first), "median_first_token_s": statistics.median(first),
            "median_first_verified_s": statistics.median(shown),
            "median_total_s": statistics.median(total), "p95_total_s": _percentile(total, 0.95),
            "median_direct_generate_s": statistics.median(direct) if direct else float("nan"),
            "pipeline_overhead": overhead,
            "median_question_overhead": per_question}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["documents"]:  # the document-layout check: no models needed
        from .layout_check import run

        return run(misses="--misses" in argv)
    if argv[:1] == ["retrieval"]:  # the index at scale: no models needed
        parser = argparse.ArgumentParser(prog="python -m qa.bench retrieval")
        parser.add_argument("--sizes", default="1000,10000,100000")
        args = parser.parse_args(argv[1:])
        print_retrieval(bench_retrieval(tuple(int(s) for s in args.sizes.split(","))))
        return 0
    if argv[:1] == ["caps"]:  # oversized inputs answered or refused in seconds (the real models)
        from .caps_check import main as caps

        config.set_offline()
        return caps()
    if argv[:1] == ["polarity"]:  # the verifier against falsified sentences: no models needed
        from .polarity_check import check_documents, table

        documents = [config.corpus_dir() / p.name for p in sorted(config.corpus_dir().iterdir())]
        documents += sorted((config.REPO_ROOT / "testsets" / "docs").iterdir())
        print(table(check_documents(documents)))
        return 0
    parser = argparse.ArgumentParser(prog="python -m qa.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-answers", action="store_true")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--llm-url", default=None, help="answers from this OpenAI-compatible server")
    parser.add_argument("--answers-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs per question, fastest kept (a server: 1)")
    args = parser.parse_args(argv)
    config.set_offline()
    from .service import Service

    service = Service(llm_url=args.llm_url)
    embedder = service.embedder
    import torch

    print(f"# qa bench — {torch.get_num_threads()} torch threads, {embedder.name}, "
          f"generator: {service.generator().name if args.llm_url else 'in-process'}\n")
    if not args.answers_only:
        row = bench_indexing(embedder)
        print("## Indexing")
        print("| paragraphs | raw encode (para/s) | qa index (para/s) | ratio |\n|---|---|---|---|")
        print(f"| {row['paragraphs']} | {row['raw_encode_per_s']:.0f} | {row['build_index_per_s']:.0f} | {row['ratio']:.0%} |\n")
        print_retrieval(bench_retrieval(tuple(int(s) for s in args.sizes.split(","))))
    if not args.skip_answers:
        a = bench_answers(service, repeats=args.repeats)
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
