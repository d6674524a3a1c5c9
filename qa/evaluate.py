"""Evaluate the pipeline on a test set: retrieval, citations, answers, abstention, speed.

Test set format (JSONL, one question per line; see docs/EVALUATION.md):

    {"id": "q01", "question": "...", "gold": ["doc#11"], "answer": "reference answer",
     "key_facts": ["France", "Mexico|Mexican"], "history": [{"question": "...", "answer": "..."}],
     "type": "factual"}

`gold` is empty for questions the document cannot answer. A key fact matches when any of its
"|"-separated alternatives occurs in the answer (case-insensitive).

Metric definitions (tested against hand-computed cases in tests/test_metrics.py):

* recall@k: share of the gold paragraphs found in the first k retrieved (duplicates in the
  ranking count once); MRR: 1 / rank of the first gold paragraph; nDCG@10 with binary
  relevance, the ideal DCG computed from the gold set (not from the retrieved list), so a
  short ranking is not rewarded.
* citations: "cites gold" — the answer cites at least one gold paragraph; precision — share
  of cited paragraphs that are gold. ALCE-style citation recall — share of answer sentences
  supported by the union of what they cite; ALCE citation precision — share of citations that
  support their sentence alone or are needed for its support. The support check is the
  offline lexical one in grounding.py (the same the pipeline uses, so these two measure how
  consistently the answer text keeps what the checks allowed, not an independent judge).
* answers: key-fact accuracy (all key facts present) and SQuAD token F1 against the reference.
* abstention: share of unanswerable questions declined; share of answerable ones declined.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import string
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import grounding
from .answer import Answerer, Answer
from .errors import GenerationTimeout, QuestionError, TestSetError

MISSING_EVIDENCE = "missing:"  # gold id of a quote no paragraph holds
DEFAULT_TESTSET = Path(__file__).resolve().parent.parent / "testsets" / "r2p-2017.jsonl"


@dataclass(frozen=True)
class TestItem:
    __test__ = False  # not a pytest class

    id: str
    question: str
    gold: tuple[str, ...]
    answer: str
    key_facts: tuple[str, ...] = ()
    history: tuple[dict, ...] = ()
    type: str = ""
    evidence: tuple[str, ...] = ()  # verbatim quotes of the document that answer it
    line: int = 0  # where it stands in its file, for messages

    @property
    def answerable(self) -> bool:
        return bool(self.gold) or bool(self.evidence)


@dataclass(frozen=True)
class TestSet:
    """A test set: its questions and, when its first line names them, its documents."""

    __test__ = False

    path: Path
    items: list[TestItem]
    documents: tuple[Path, ...] = ()  # empty: the set is about the current index


def read_testset(path: Path) -> TestSet:
    """Parse and validate a test set; every error names the file and line.

    The first line may be a header naming the documents the set is about, relative to the
    set's own folder: {"documents": ["docs/mpl-2.0.txt"]}. Each question gives its gold
    paragraphs as ids ("gold") or as verbatim quotes ("evidence"), which `resolve_evidence`
    turns into the ids of whatever paragraphs the current reader makes of the document.
    """
    path = Path(path)
    if not path.exists():
        raise TestSetError(f"{path}: no such test set")
    items, seen, documents = [], set(), ()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise TestSetError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(data, dict):
            raise TestSetError(f"{where}: expected a JSON object")
        if "documents" in data and "question" not in data:
            if items or documents:
                raise TestSetError(f"{where}: the \"documents\" header must be the first line")
            names = data["documents"]
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise TestSetError(f"{where}: \"documents\" must be a list of file paths")
            documents = tuple((path.parent / n).resolve() for n in names)
            missing = [str(d) for d in documents if not d.exists()]
            if missing:
                raise TestSetError(f"{where}: document(s) not found: {', '.join(missing)}")
            continue
        if "gold" not in data and "evidence" not in data:
            raise TestSetError(f"{where}: missing field \"gold\" (or \"evidence\")")
        for name, kind in (("id", (str, int)), ("question", str), ("gold", list), ("evidence", list), ("answer", str)):
            if name not in data and name in ("gold", "evidence"):
                continue
            if name not in data:
                raise TestSetError(f"{where}: missing field \"{name}\"")
            if not isinstance(data[name], kind):
                raise TestSetError(f"{where}: field \"{name}\" has the wrong type")
        if not str(data["question"]).strip():
            raise TestSetError(f"{where}: the question is empty")
        if str(data["id"]) in seen:
            raise TestSetError(f"{where}: duplicate id {data['id']!r}")
        seen.add(str(data["id"]))
        facts = data.get("key_facts", [])
        history = data.get("history", [])
        evidence = data.get("evidence", [])
        if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
            raise TestSetError(f"{where}: \"key_facts\" must be a list of strings")
        if not all(isinstance(e, str) and e.strip() for e in evidence):
            raise TestSetError(f"{where}: \"evidence\" must be a list of quotes")
        if not isinstance(history, list) or not all(isinstance(h, dict) and "question" in h for h in history):
            raise TestSetError(f"{where}: \"history\" must be a list of {{\"question\", \"answer\"}} objects")
        items.append(TestItem(str(data["id"]), data["question"], tuple(str(g) for g in data.get("gold", [])),
                              data["answer"], tuple(facts), tuple(history), str(data.get("type", "")),
                              tuple(evidence), number))
    if not items:
        raise TestSetError(f"{path}: the test set has no questions")
    return TestSet(path, items, documents)


def load_testset(path: Path, known_ids: set[str] | None = None, paragraphs=None) -> list[TestItem]:
    """The questions of a test set, gold ids checked against `known_ids` and evidence quotes
    resolved against `paragraphs` (objects with `id` and `text`) when given."""
    testset = read_testset(path)
    items = testset.items
    if paragraphs is not None:
        items = resolve_evidence(items, paragraphs, Path(path).name)
    if known_ids is not None:
        for item in items:
            unknown = [g for g in item.gold if g not in known_ids and not g.startswith(MISSING_EVIDENCE)]
            if unknown:
                raise TestSetError(f"{Path(path).name}:{item.line}: unknown paragraph id(s) "
                                   f"{', '.join(unknown)} (not in the index)")
    return items


def _flat(text: str) -> str:
    """Letters and digits only, lower case, compatibility-normalised: a quote still matches
    a PDF's text layer that lost spaces, kept ligatures or split a word at a line end."""
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def resolve_evidence(items: list[TestItem], paragraphs, where: str = "test set") -> list[TestItem]:
    """Gold ids from evidence quotes: every paragraph that contains a quote (or, when a
    reader split the quoted sentence, the consecutive paragraphs that contain it together)."""
    paragraphs = list(paragraphs)
    flat = [_flat(p.text) for p in paragraphs]
    out = []
    for item in items:
        if not item.evidence:
            out.append(item)
            continue
        gold = list(item.gold)
        for quote in item.evidence:
            needle = _flat(quote)
            found = [paragraphs[n].id for n, text in enumerate(flat) if needle in text]
            if not found:
                found = [paragraphs[m].id for n in range(len(flat) - 1) if needle in flat[n] + flat[n + 1]
                         for m in (n, n + 1)]
            if not found:
                # A reader that makes a title or heading no paragraph of its own: the first
                # paragraph under it is where a reader would look.
                found = [p.id for p in paragraphs if needle in _flat(getattr(p, "section", ""))][:1]
            if not found:
                # The reader lost this text (a boxed clause, a page it could not read): the
                # question stays answerable and scores as a miss, never as unanswerable.
                print(f"warning: {where}: {item.id}: evidence not in any paragraph: {quote[:60]!r}",
                      file=sys.stderr)
                found = [MISSING_EVIDENCE + quote]
            gold += found
        out.append(replace(item, gold=tuple(dict.fromkeys(gold))))
    return out


# --------------------------------------------------------------------------- metrics


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def recall_at(retrieved: list[str], gold: set[str], k: int) -> float:
    if not gold:
        return 0.0
    return len(set(_unique(retrieved)[:k]) & gold) / len(gold)


def reciprocal_rank(retrieved: list[str], gold: set[str]) -> float:
    for rank, pid in enumerate(_unique(retrieved), 1):
        if pid in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at(retrieved: list[str], gold: set[str], k: int = 10) -> float:
    if not gold:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, pid in enumerate(_unique(retrieved)[:k], 1) if pid in gold)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), k) + 1))
    return dcg / ideal


def key_fact_hit(answer: str, facts) -> bool:
    """Every fact has one of its "|"-alternatives in the answer, as whole words: "no" is not
    found in "notice" or "know", "30" not in "300".

    An alternative of plain words also matches the same words inflected: "prominent notices"
    carries "prominent notice", "July 13th" carries "July 13", "licensed" carries "license".
    Words are compared by their stems, so "no" still never meets "notice" nor "30" "300"; an
    alternative with punctuation ("-H", "bug-tar@gnu.org", "2.0") is matched exactly."""
    if not facts:
        return False
    lower = answer.lower()
    answer_words = _fact_words(lower)

    def found(alternative: str) -> bool:
        alternative = alternative.strip().lower()
        if not alternative:
            return False
        start = r"(?<!\w)" if alternative[0].isalnum() else ""
        end = r"(?!\w)" if alternative[-1].isalnum() else ""
        if re.search(start + re.escape(alternative) + end, lower) is not None:
            return True
        if not re.fullmatch(r"[a-z0-9]+(?: [a-z0-9]+)*", alternative):
            return False
        wanted = _fact_words(alternative)
        return any(answer_words[i:i + len(wanted)] == wanted for i in range(len(answer_words) - len(wanted) + 1))

    return all(any(found(alt) for alt in fact.split("|")) for fact in facts)


def _fact_words(text: str) -> list[str]:
    """Words for inflection-tolerant key-fact matching: stems, ordinals as their number."""
    words = re.findall(r"\w+", text)
    return [re.sub(r"^(\d+)(?:st|nd|rd|th)$", r"\1", w) if w[0].isdigit() else grounding.stem(w) for w in words]


def _normalise(text: str) -> list[str]:
    text = grounding.strip_markers(text).lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = _normalise(prediction), _normalise(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def alce_citation_scores(answer_text: str, cited_texts: dict[str, str], labels: dict[str, str],
                         min_support: float = 0.5) -> tuple[float | None, float | None]:
    """(citation recall, citation precision) over the answer's sentences; None if no sentence."""

    def supported(sentence: str, texts: list[str]) -> bool:
        return bool(texts) and grounding.support(sentence, " ".join(texts)).score >= min_support

    sentences = grounding.split_sentences(answer_text)
    if not sentences:
        return None, None
    supported_count, precise, total_citations = 0, 0, 0
    for sentence in sentences:
        halves = grounding.cited_parts(sentence)
        if halves and not sentence.lstrip().startswith("["):
            # "A led one [¶10], while B led the other [¶11]": each half against its own citation.
            ok = [supported(text, [cited_texts[i] for i in dict.fromkeys(labels.get(m) for m in half_marks)
                                   if i in cited_texts])
                  for text, half_marks in halves]
            supported_count += all(ok)
            total_citations += len(ok)
            precise += sum(ok)
            continue
        marks = [lab for _, _, found in grounding.find_markers(sentence) for lab in found]
        ids = [labels.get(m) for m in marks]
        ids = [i for i in dict.fromkeys(ids) if i in cited_texts]
        claim = grounding.strip_markers(sentence)
        texts = [cited_texts[i] for i in ids]
        whole = supported(claim, texts)
        supported_count += whole
        for i in ids:
            total_citations += 1
            alone = supported(claim, [cited_texts[i]])
            others = [cited_texts[j] for j in ids if j != i]
            needed = whole and not supported(claim, others)
            precise += alone or needed
    return supported_count / len(sentences), (precise / total_citations if total_citations else None)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


# --------------------------------------------------------------------------- running


@dataclass
class Result:
    item: TestItem
    retrieved: list[str]  # top-10 paragraph ids
    answer: Answer | None = None
    error: str = ""
    scores: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        a = self.answer
        return {
            "id": self.item.id, "type": self.item.type, "question": self.item.question,
            "gold": list(self.item.gold), "reference": self.item.answer, "retrieved": self.retrieved,
            "answer": a.text if a else "", "abstained": a.abstained if a else None,
            "reason": a.reason if a else self.error, "draft": a.draft if a else "",
            "citations": [{"id": c.id, "label": c.label, "text": c.text} for c in a.citations] if a else [],
            "passages": [{"id": p.id, "label": p.label, "score": round(p.score, 4)} for p in a.passages] if a else [],
            "timings": {k: round(v, 3) for k, v in a.timings.items()} if a else {},
            "scores": self.scores,
            "trace": a.trace if a else [],
        }


def evaluate(answerer: Answerer, items: list[TestItem], retrieval_only: bool = False,
             progress=None) -> tuple[list[Result], dict]:
    results = []
    for number, item in enumerate(items, 1):
        retrieved = [h.paragraph.id for h in answerer.retrieve(item.question, list(item.history), k=10)]
        result = Result(item, retrieved)
        if not retrieval_only:
            try:
                result.answer = answerer.ask(item.question, list(item.history))
            except (QuestionError, GenerationTimeout) as error:  # that question fails, the run goes on
                result.error = str(error)
        result.scores = score(result, answerer)
        results.append(result)
        if progress:
            progress(number, len(items), result)
    return results, summarise(results, retrieval_only)


def score(result: Result, answerer: Answerer) -> dict:
    item, gold = result.item, set(result.item.gold)
    scores: dict = {}
    if item.answerable:
        scores.update({f"recall@{k}": recall_at(result.retrieved, gold, k) for k in (1, 3, 5)})
        scores["mrr"] = reciprocal_rank(result.retrieved, gold)
        scores["ndcg@10"] = ndcg_at(result.retrieved, gold, 10)
    a = result.answer
    if a is None:
        return scores
    cited = [c.id for c in a.citations]
    scores["abstained"] = a.abstained
    if item.answerable:
        # A decline carries no facts ("The document does not say." contains "not").
        scores["key_facts"] = (key_fact_hit(a.text, item.key_facts) and not a.abstained) if item.key_facts else None
        scores["token_f1"] = token_f1("" if a.abstained else a.text, item.answer)
        scores["cites_gold"] = bool(set(cited) & gold)
        scores["citation_precision"] = (sum(c in gold for c in cited) / len(cited)) if cited else None
    labels = {label: pid for pid, label in answerer.display_labels(a.passages).items()}
    labels.update({label.replace("¶", ""): pid for label, pid in list(labels.items())})
    recall, precision = alce_citation_scores(
        a.text if not a.abstained else "", {c.id: c.text for c in a.citations}, labels,
        answerer.settings.min_support)
    scores["alce_recall"], scores["alce_precision"] = recall, precision
    scores["seconds"] = a.timings.get("total")
    scores["first_token"] = a.timings.get("first_token")
    # Time to the first sentence shown (verified); a decline shows its one line at the end.
    scores["first_shown"] = a.timings.get("first_verified", a.timings.get("total"))
    return scores


def summarise(results: list[Result], retrieval_only: bool = False) -> dict:
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]
    s: dict = {"questions": len(results), "answerable": len(answerable), "unanswerable": len(unanswerable)}
    for key in ("recall@1", "recall@3", "recall@5", "mrr", "ndcg@10"):
        s[key] = _mean(r.scores.get(key) for r in answerable)
    if retrieval_only:
        return s
    s["key_fact_accuracy"] = _mean(float(r.scores["key_facts"]) for r in answerable if r.scores.get("key_facts") is not None)
    s["token_f1"] = _mean(r.scores.get("token_f1") for r in answerable)
    s["cites_gold"] = _mean(float(r.scores.get("cites_gold", False)) for r in answerable)
    s["citation_precision"] = _mean(r.scores.get("citation_precision") for r in answerable)
    s["alce_citation_recall"] = _mean(r.scores.get("alce_recall") for r in results)
    s["alce_citation_precision"] = _mean(r.scores.get("alce_precision") for r in results)
    s["unanswerable_declined"] = _mean(float(bool(r.scores.get("abstained"))) for r in unanswerable)
    s["answerable_declined"] = _mean(float(bool(r.scores.get("abstained"))) for r in answerable)
    answered = [r.answer for r in results if r.answer is not None and not r.answer.abstained]
    # Quoting the document is always grounded but long; these two keep that trade-off visible.
    s["quoted_share"] = _mean(float(a.quoted) for a in answered)
    s["median_answer_words"] = (statistics.median(len(grounding.strip_markers(a.text).split()) for a in answered)
                                if answered else float("nan"))
    seconds = [r.scores["seconds"] for r in results if r.scores.get("seconds") is not None]
    firsts = [r.scores["first_token"] for r in results if r.scores.get("first_token") is not None]
    s["median_seconds"] = statistics.median(seconds) if seconds else float("nan")
    s["p95_seconds"] = _percentile(seconds, 0.95)
    s["median_first_token"] = statistics.median(firsts) if firsts else float("nan")
    s["p95_first_token"] = _percentile(firsts, 0.95)
    shown = [r.scores["first_shown"] for r in results if r.scores.get("first_shown") is not None]
    s["median_first_shown"] = statistics.median(shown) if shown else float("nan")
    s["p95_first_shown"] = _percentile(shown, 0.95)
    return s


def failures(results: list[Result]) -> list[tuple[Result, str]]:
    found = []
    for r in results:
        sc = r.scores
        if r.answer is None:
            if r.item.answerable and sc.get("recall@3", 1) == 0:
                found.append((r, "gold paragraph not in the top 3"))
            continue
        if not r.item.answerable and not sc.get("abstained"):
            found.append((r, "answered a question the document cannot answer"))
        elif r.item.answerable and sc.get("abstained"):
            found.append((r, "declined an answerable question"))
        elif r.item.answerable and sc.get("key_facts") is False:
            found.append((r, "missing key facts"))
        elif r.item.answerable and not sc.get("cites_gold"):
            found.append((r, "cites no gold paragraph"))
    return found


# --------------------------------------------------------------------------- reports

_LABELS = {
    "recall@1": "Recall@1", "recall@3": "Recall@3", "recall@5": "Recall@5", "mrr": "MRR", "ndcg@10": "nDCG@10",
    "key_fact_accuracy": "Key facts", "token_f1": "Token F1", "cites_gold": "Cites gold",
    "citation_precision": "Citation precision", "alce_citation_recall": "ALCE citation recall",
    "alce_citation_precision": "ALCE citation precision", "unanswerable_declined": "Unanswerable declined",
    "answerable_declined": "Answerable declined", "quoted_share": "Answers quoting the document",
    "median_answer_words": "Median words per answer", "median_seconds": "Median s / answer",
    "p95_seconds": "p95 s / answer", "median_first_token": "Median s to first token",
    "p95_first_token": "p95 s to first token", "median_first_shown": "Median s to first verified sentence",
    "p95_first_shown": "p95 s to first verified sentence",
}


def _fmt(value) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def summary_table(columns: dict[str, dict]) -> str:
    """A Markdown table: one row per metric, one column per configuration."""
    names = list(columns)
    keys = [k for k in _LABELS if any(k in c for c in columns.values())]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in keys:
        lines.append(f"| {_LABELS[key]} | " + " | ".join(_fmt(columns[n].get(key, float('nan'))) for n in names) + " |")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in _LABELS if k in summary and not k.endswith(("seconds", "first_token", "first_shown", "words"))
            and not math.isnan(summary[k])]
    values = [summary[k] for k in keys]
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(keys) + 1.2))
    bars = ax.barh([_LABELS[k] for k in keys][::-1], values[::-1], color="#3b82f6")
    for bar, value in zip(bars, values[::-1]):
        ax.text(min(value + 0.01, 0.93), bar.get_y() + bar.get_height() / 2, f"{value:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_title(f"qa eval — {summary.get('questions', 0)} questions", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(folder: Path, results: list[Result], summary: dict, config_name: str = "default",
                 testset: Path | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.jsonl", "w", encoding="utf-8") as handle:
        for r in results:
            handle.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = ["# Evaluation report", "", f"Test set: `{testset}` — {summary['questions']} questions "
             f"({summary['answerable']} answerable, {summary['unanswerable']} unanswerable); "
             f"configuration: {config_name}.", "", summary_table({config_name: summary}), ""]
    failed = failures(results)
    lines.append(f"## Failures ({len(failed)})")
    lines.append("")
    for r, why in failed:
        answer = r.answer.text if r.answer else ""
        lines.append(f"- **{r.item.id}** ({r.item.type}) {why}: {r.item.question}  \n"
                     f"  answer: {answer!r}; gold: {', '.join(r.item.gold) or '—'}; retrieved: {', '.join(r.retrieved[:3])}")
    (folder / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(summary, folder / "metrics.png")
    return folder


def parse_configuration(text: str) -> dict:
    """'mode=dense,k=5' -> {'mode': 'dense', 'k': 5} (values typed like AnswerSettings)."""
    from .answer import AnswerSettings

    fields = AnswerSettings.__dataclass_fields__
    overrides = {}
    for part in filter(None, text.split(",")):
        if "=" not in part:
            raise TestSetError(f"configuration {text!r}: expected name=value")
        name, value = (s.strip() for s in part.split("=", 1))
        if name not in fields:
            raise TestSetError(f"configuration {text!r}: unknown setting {name!r} (known: {', '.join(fields)})")
        kind = type(getattr(AnswerSettings(), name))
        try:
            overrides[name] = kind(value)
        except ValueError:
            raise TestSetError(f"configuration {text!r}: {name} must be a {kind.__name__}") from None
    return overrides


def service_for(testset: TestSet, service):
    """The service whose index holds the test set's documents: the current one when it was
    built from exactly those files, else one over an index of its own under index/eval/
    (rebuilt when the documents change; unchanged paragraphs keep their vectors)."""
    if not testset.documents:
        return service
    from .service import Service

    wanted = {str(d) for d in testset.documents}
    if {str(Path(p).resolve()) for p in service.source_paths()} == wanted:
        return service
    folder = service.index_path.parent / "eval" / re.sub(r"[^A-Za-z0-9_.-]+", "_", testset.path.stem)
    own = Service(index_path=folder, settings=service.settings, embedder=service.embedder,
                  generator=service._generator, generator_path=service.generator_path)
    own.build(list(testset.documents))
    return own


class ReplayedDrafts:
    """A generator that writes, for each question, the draft an earlier run recorded."""

    name = "replay"

    def __init__(self, drafts: dict[str, str]):
        self.drafts = drafts

    def stream(self, messages: list[dict], max_new_tokens: int = 0):
        question = messages[-1]["content"]
        if question not in self.drafts:
            raise TestSetError(f"no recorded draft for {question[:60]!r}: replay the run's own test set")
        yield self.drafts[question]


def _recorded_drafts(path: Path) -> dict[str, str]:
    """question -> draft, from an evaluation's results.jsonl."""
    path = Path(path)
    if not path.exists():
        raise TestSetError(f"{path}: no such results file")
    drafts = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
            drafts[record["question"]] = record.get("draft") or ""
        except (json.JSONDecodeError, KeyError, TypeError):
            raise TestSetError(f"{path.name}:{number}: not a result record") from None
    return drafts


def run_cli(args, service) -> int:
    from tqdm import tqdm

    testset = args.testset or DEFAULT_TESTSET
    service = service_for(read_testset(testset), service)
    items = load_testset(testset, set(service.index.by_id), service.index.paragraphs)
    if args.limit:
        items = items[: args.limit]
    configurations = {"default": {}}
    for text in args.compare or []:
        configurations[text] = parse_configuration(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or Path("reports") / stamp
    columns = {}
    replay = getattr(args, "replay", None)
    drafts = _recorded_drafts(replay) if replay else None
    for name, overrides in configurations.items():
        if drafts is not None:
            # The recorded drafts through the claim stages under this policy: seconds, not
            # minutes, and exact for every setting that does not change the prompt.
            from .answer import Answerer

            answerer = Answerer(service.index, ReplayedDrafts(drafts), replace(service.settings, **overrides))
        else:
            answerer = (service.retriever(**overrides) if args.retrieval_only else
                        service.answerer(progress=lambda m: print(m, file=sys.stderr), **overrides))
        bar = tqdm(total=len(items), desc=f"eval {name}", unit="q", file=sys.stderr)
        results, summary = evaluate(answerer, items, args.retrieval_only,
                                    progress=lambda n, total, r: bar.update(1))
        bar.close()
        folder = out if len(configurations) == 1 else out / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        write_report(folder, results, summary, name, testset)
        columns[name] = summary
    table = summary_table(columns)
    print(table)
    if len(configurations) > 1:
        (Path(out) / "comparison.md").write_text(table + "\n")
    print(f"\nreport written to {out}", file=sys.stderr)
    return 0
