"""Does a passage support a claim? The verdict the pipeline trusts before it shows a sentence.

Three questions, each of which a small model gets wrong in its own way:

* **Words** (`grounding.support`): the share of the claim's content words, rarer ones
  weighing more, found in one window of the passage; the question's words it repeats must be
  there too.
* **Names and numbers**: every name and number the claim adds must be in the passage, wherever
  it stands in the claim ("Ghana led ..." is checked like "... led by Ghana"); numbers are
  compared by value, so "thirty days" meets "30 days" and "sixty days" does not.
* **Polarity**: each clause of the claim must agree on negation with the clause of the
  passage it restates. "The authors shall be liable for any claim" shares every word with
  "in no event shall the authors be liable for any claim" and says the opposite.

A claim passes only if all three hold; the verdict says which failed, for the trace.
No ML imports: lexical, deterministic, microseconds per claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import grounding, lexicon
from .policy import DEFAULT_POLICY, Policy

_NEGATIONS = lexicon.words("negations")
_CLAUSE_BREAK = re.compile(r"[;:,()\[\]]|\s[-–—]\s|\bwhile\b|\bwhereas\b|\bbut\b", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    supported: bool
    score: float  # word support, 0..1 (0 when a name or number is missing)
    reason: str = ""  # why not supported; empty when it is
    missing: tuple[str, ...] = field(default=())  # names / numbers absent from the passage
    # Supported, but the part of the passage it restates holds a negation of something the
    # claim leaves out ("mount it" for "mount (but not reformat) it"): show the passage's words.
    leaves_out: str = ""


@dataclass(frozen=True)
class Context:
    """What the verifier knows about the documents: rarity of words, their vocabulary and their
    names (so a capitalised first word can be told from a name)."""

    idf: dict | None = None
    vocabulary: set[str] | None = None
    names: frozenset[str] | None = None


_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# "except that ..." introduces the exception as a statement of its own ("A person may hold
# several posts, except that the Project Leader ... must be distinct"): it negates nothing.
_EXCEPT_THAT = re.compile(r"\bexcept that\b", re.IGNORECASE)


def _tokens(text: str) -> list[str]:
    """The text's words in lower case, without the negation words that are part of a name: a
    capitalised "None" or "No" inside a sentence that opens a run of capitalised words the
    sentence then goes on from in lower case ("If None Of The Above wins", "the No Fly List
    is") names something and turns nothing. A title-cased line ("In No Event Shall The
    Authors Be Liable") has no such end, and all-capital words ("THERE IS NO WARRANTY") are
    emphasis: their negations count."""
    text = _EXCEPT_THAT.sub("that", text)
    found = list(_WORD.finditer(text))
    words = [match.group(0) for match in found]
    tokens = []
    for n, word in enumerate(words):
        if 0 < n and word.istitle() and word.lower() in _NEGATIONS \
                and text[found[n - 1].end():found[n].start()].strip() in ("", ","):
            end = n + 1
            while end < len(words) and words[end][:1].isupper() and not text[found[end - 1].end():found[end].start()].strip():
                end += 1
            if end - n >= 2 and end < len(words) and words[end].islower() \
                    and not text[found[end - 1].end():found[end].start()].strip():
                continue
        tokens.append(word.lower())
    return tokens


def _is_negation(token: str) -> bool:
    return token in _NEGATIONS or token.endswith("n't")


def negations(text: str) -> int:
    """How many words in the text turn its polarity ("not", "no", "without", "except")?"""
    return sum(map(_is_negation, _tokens(text)))


def negated(text: str) -> bool:
    return negations(text) > 0


def clauses(text: str) -> list[str]:
    parts = [p.strip() for p in _CLAUSE_BREAK.split(text)]
    return [p for p in parts if p]


def _units(claim: str) -> list[tuple[str, str]]:
    """The claim's clauses, each short one joined to its neighbour until it has two content
    words ("is not controlled by" alone says too little to be matched to a clause), each
    with the sentence it belongs to."""
    units: list[tuple[str, str]] = []
    # Sentence by sentence: the passage's clauses are matched within its sentences, so a unit
    # must not run across two ("... has no more output! avail_out is zero").
    for sentence in grounding.split_sentences(claim) or [claim]:
        mine: list[str] = []
        for part in clauses(sentence):
            if mine and len(_stems(mine[-1])) < 2:
                mine[-1] += ", " + part
            else:
                mine.append(part)
        if len(mine) > 1 and len(_stems(mine[-1])) < 2:
            last = mine.pop()
            mine[-1] += ", " + last
        units += [(unit, sentence) for unit in mine]
    return units


def _stems(text: str) -> set[str]:
    """Content stems with hyphenated words taken apart: "no-charge" and "some-charge" share
    "charge", so the clause that holds the "no" is found for the one that dropped it."""
    return grounding.content_stems(text.replace("-", " "))


def polarity_conflict(claim: str, passage: str, idf: dict | None = None) -> str:
    """The part of the claim that disagrees on negation with the passage clause it restates, or "".
    (See `polarity` for the parts that only leave a negation out.)"""
    return polarity(claim, passage, idf)[0]


def polarity(claim: str, passage: str, idf: dict | None = None,
             negated_span: int = DEFAULT_POLICY.negated_span) -> tuple[str, str]:
    """(the part of the claim that disagrees on negation with the passage clause it restates,
    the part that restates words around a negation of the passage but not what it negates),
    each "" when there is none.

    Each part of the claim is matched to the run of adjacent clauses (one to three) of the
    passage sharing most of its words, the shortest on a tie; they must hold as many negations ("with no transfer
    ..., is not conveying" against "..., is conveying"). A part that shares little with any
    clause (a paraphrase) is not judged here: the word check covers it.
    """
    left_out = ""
    windows = []  # runs of one to three adjacent clauses of one sentence, with that sentence
    for sentence in grounding.split_sentences(passage) or [passage]:
        parts = clauses(sentence)
        stems = [_stems(c) for c in parts]
        for start in range(len(parts)):
            for end in range(start + 1, min(start + 3, len(parts)) + 1):
                windows.append((", ".join(parts[start:end]), set().union(*stems[start:end]), sentence))
    if not windows:
        return "", ""
    for part, whole in _units(claim):
        wanted = _stems(part)
        if not wanted:
            continue
        best_share, best_text, best_sentence = 0.0, "", ""
        for text, found, sentence in windows:
            share = grounding.weighted_share(wanted, found, idf)
            # The tightest window wins a tie: a neighbouring clause's "not" is not this one's.
            if share > best_share + 1e-9 or (abs(share - best_share) <= 1e-9 and len(text) < len(best_text)):
                best_share, best_text, best_sentence = share, text, sentence
        # A paraphrase may move the negation to another clause ("if you call it again without
        # Z_FINISH, it returns an error" for "later calls return an error if the flush is not
        # Z_FINISH"): a turned polarity changes the count of the whole sentence as well.
        if best_share >= 0.5 and negations(part) != negations(best_text) and negations(whole) != negations(best_sentence):
            if negations(part) < negations(best_text) and not wanted & _negated_words(best_text, negated_span):
                # The claim takes words from around the passage's negation, not the words it
                # negates: "the treaty named is the WIPO copyright treaty" restates the end of
                # "No covered work shall be deemed part of ... the WIPO copyright treaty",
                # whose "No" turns "covered work ... deemed", which the claim never says. No
                # contradiction, but what it leaves out may be the point ("mount it" for
                # "mount (but not reformat) it"): the caller shows the passage's own words.
                left_out = left_out or part
                continue
            return part, ""
    return "", left_out


def _negated_words(text: str, span: int) -> set[str]:
    """Stems of the first `span` content words after each negation in its clause: what it
    negates. A negation that ends its clause ("whether it is made or not") turns the words
    before it instead."""
    found: set[str] = set()
    for clause in clauses(text):
        tokens = _tokens(clause)
        for n, token in enumerate(tokens):
            if _is_negation(token):
                following = [t for t in tokens[n + 1:] if grounding.content_stems(t)]
                preceding = [t for t in tokens[:n] if grounding.content_stems(t)]
                found |= _stems(" ".join(following[:span] or preceding[-span:]))
    return found


def missing_numbers(claim: str, passage: str, question: str = "", heading: str = "") -> set[str]:
    """Numbers the claim states (in digits or words) that neither the passage nor the question has."""
    stated = grounding.number_values(claim) - grounding.number_values(question)
    return stated - grounding.number_values(passage + " " + heading)


def verify(claim: str, passage: str, question: str = "", context: Context = Context(),
           heading: str = "", policy: Policy = DEFAULT_POLICY, require_subject: bool = True,
           window: int | None = None) -> Verdict:
    """The verdict on one claim against one passage (its evidence sentences)."""
    support = grounding.support(claim, passage, question, context.idf, window or policy.support_window,
                                context.vocabulary, require_subject=require_subject, heading=heading,
                                names=context.names)
    if support.missing:
        return Verdict(False, 0.0, "names or numbers not in the passage: " + ", ".join(support.missing), support.missing)
    numbers = missing_numbers(claim, passage, question, heading)
    if numbers:
        return Verdict(False, 0.0, "numbers not in the passage: " + ", ".join(sorted(numbers)), tuple(sorted(numbers)))
    if support.overlap < policy.min_support:
        return Verdict(False, support.overlap, f"only {support.overlap:.0%} of its words are in the passage")
    conflict, left_out = polarity(claim, passage, context.idf, policy.negated_span)
    if conflict:
        return Verdict(False, 0.0, f"negation differs from the passage: {conflict!r}")
    return Verdict(True, support.overlap, leaves_out=left_out)
