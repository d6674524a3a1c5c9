"""A generated test of the verifier: true sentences, turned false, must be rejected.

For every document, each sentence of each paragraph is a claim its paragraph supports. Three
falsified copies are made of it where the sentence allows:

* **polarity**: a negation removed ("shall not" -> "shall", "without" -> "with", "no" ->
  "some") or added after the first auxiliary ("is" -> "is not", "may" -> "may not");
* **number**: a number replaced by another number of the same document that its paragraph
  lacks;
* **name**: a name replaced by another name of the same document that its paragraph lacks.

The verifier (verify.py, as the pipeline calls it) must keep the true sentences and reject
the false ones. `python -m qa.bench polarity` prints the rates per document; a test holds
the floor (rejected >= 95 %).

No ML imports; runs in seconds.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from . import grounding
from .documents import load_documents
from .verify import Context, verify

_AUXILIARIES = ("is are was were shall may must will can could should would does do did has have "
                "might").split()
_REMOVALS = [  # a negation and what the sentence says without it
    (r"\bshall not\b", "shall"), (r"\bmay not\b", "may"), (r"\bmust not\b", "must"), (r"\bwill not\b", "will"),
    (r"\bdoes not\b", "does"), (r"\bdo not\b", "do"), (r"\bdid not\b", "did"), (r"\bis not\b", "is"),
    (r"\bare not\b", "are"), (r"\bwas not\b", "was"), (r"\bwere not\b", "were"), (r"\bcannot\b", "can"),
    (r"\bcan't\b", "can"), (r"\bdon't\b", "do"), (r"\bdoesn't\b", "does"), (r"\bnever\b", "always"),
    (r"\bwithout\b", "with"), (r"\bno\b", "some"), (r"\bnot\b", ""), (r"\bexcept\b", "including"),
    (r"\bunless\b", "if"),
]


@dataclass
class Rates:
    document: str
    true_kept: int = 0
    true_total: int = 0
    rejected: dict | None = None  # kind -> (rejected, total)
    missed: list | None = None  # (kind, falsified sentence) the verifier let through

    def __post_init__(self):
        self.rejected = {"polarity": [0, 0], "number": [0, 0], "name": [0, 0]}
        self.missed = []

    @property
    def falsified_rejected(self) -> float:
        done = sum(r for r, _ in self.rejected.values())
        total = sum(t for _, t in self.rejected.values())
        return done / total if total else float("nan")


def invert_polarity(sentence: str) -> str | None:
    """The sentence with its polarity turned, or None if no rule applies."""
    for pattern, replacement in _REMOVALS:
        if re.search(pattern, sentence, re.I):
            flipped = re.sub(pattern, replacement, sentence, count=1, flags=re.I)
            return re.sub(r"\s{2,}", " ", flipped).strip()
    for auxiliary in _AUXILIARIES:
        match = re.search(rf"\b{auxiliary}\b", sentence, re.I)
        if match:
            return sentence[:match.end()] + " not" + sentence[match.end():]
    return None


_NUMBER = re.compile(r"(?<![\w.])\d+(?!\w|\.\d)")  # a number on its own, not a piece of "3.1"


def _capitalised(text: str) -> list[str]:
    """Capitalised words inside sentences (not a sentence's first word)."""
    return re.findall(r"(?<=[a-z,;] )[A-Z][a-z]{3,}\b", text)


def swap(sentence: str, old: str, new: str) -> str:
    return re.sub(rf"(?<![\w]){re.escape(old)}(?![\w])", new, sentence, count=1)


def check_documents(paths: list[Path], per_document: int = 200, seed: int = 0) -> list[Rates]:
    rng = random.Random(seed)
    out = []
    for document in load_documents(paths):
        texts = [p.text for p in document.paragraphs]
        context = Context(grounding.inverse_document_frequency(texts), grounding.vocabulary_of(texts),
                          grounding.names_of(texts))
        all_text = " ".join(texts)
        numbers = sorted(set(_NUMBER.findall(all_text)))
        # Names: capitalised words the document never writes in lower case. (A licence's
        # defined terms, "License", "Source", are words, not names.)
        common = grounding.lower_case_words(texts)
        names = sorted({w for w in _capitalised(all_text) if w.lower() not in common | grounding.STOPWORDS})
        cases = [(p, s) for p in document.paragraphs for s in grounding.split_sentences(grounding.evidence(p.text))
                 if len(s.split()) >= 6]
        rng.shuffle(cases)
        rates = Rates(document.path.name)
        for paragraph, sentence in cases[:per_document]:
            passage = grounding.evidence(paragraph.text)
            rates.true_total += 1
            rates.true_kept += verify(sentence, passage, "", context, paragraph.section).supported
            falsified = []
            inverted = invert_polarity(sentence)
            if inverted and inverted != sentence:
                falsified.append(("polarity", inverted))
            own_numbers = _NUMBER.findall(sentence)
            others = [n for n in numbers if n not in grounding.number_values(passage)]
            if own_numbers and others:
                falsified.append(("number", swap(sentence, own_numbers[0], rng.choice(others))))
            own_names = [w for w in _capitalised(sentence) if w.lower() not in common | grounding.STOPWORDS]
            other_names = [n for n in names if n.lower() not in passage.lower()]
            if own_names and other_names:
                falsified.append(("name", swap(sentence, own_names[0], rng.choice(other_names))))
            for kind, claim in falsified:
                rates.rejected[kind][1] += 1
                passed = verify(claim, passage, "", context, paragraph.section).supported
                rates.rejected[kind][0] += not passed
                if passed:
                    rates.missed.append((kind, claim))
        out.append(rates)
    return out


def table(rates: list[Rates]) -> str:
    lines = ["| document | true kept | polarity rejected | number rejected | name rejected | all falsified rejected |",
             "|---|---|---|---|---|---|"]
    for r in rates:
        cells = [f"{r.true_kept}/{r.true_total}"] + [f"{a}/{t}" for a, t in r.rejected.values()]
        lines.append(f"| {r.document} | " + " | ".join(cells) + f" | {r.falsified_rejected:.3f} |")
    return "\n".join(lines)
