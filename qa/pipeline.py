"""The answer pipeline: named stages over one state, and only verified text leaves it.

    retrieve -> decide_answerable -> select_evidence -> generate
             -> split_claims -> attach_evidence (verify.py) -> release -> finish

Each stage reads the `State` and adds what it decided to the state's trace, with a reason, so
every answer can say which stage decided what (`qa ask --json`, eval results, the UI's
details fold).

Streaming is by verified sentence: the model's tokens are buffered until a sentence is
complete; the sentence is split into claims, each claim is given the passage that supports
it (or dropped), and `Release` decides when what has passed may be shown. The first
sentence is shown only once the answer so far is on target (it rests on one of the
question's best sentences), is not a drift to a far weaker sentence, and gives the kind of
answer asked for; later ones as soon as they pass. Nothing the model wrote reaches the
reader unchecked, and what is shown is never taken back. When nothing passes, `finish`
quotes the document's best sentence if it is close enough to the question, else declines.

The thresholds are the policy's (policy.py); the resources — index, embedder, sentence
ranking, labels — are the `Answerer`'s (answer.py). No ML imports here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from . import grounding, lexicon, verify

if TYPE_CHECKING:  # the Answerer passes itself in; no import cycle at run time
    from .answer import Answer, Answerer

NOT_IN_DOCUMENT = "The document does not say."
MODEL_REFUSAL = "NOT IN DOCUMENT"

_REFUSAL_PATTERNS = re.compile(
    r"not in (the )?document|not (mentioned|specified|stated|provided|given|found|included|available)"
    r"|(do|does|did) not (say|mention|contain|provide|specify|state|include|discuss|address)"
    r"|no (information|mention|details?)|cannot (answer|determine|find|be determined)|unable to",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Step:
    """One decision of one stage, for the trace."""

    stage: str
    decision: str
    detail: str = ""
    draft_text: str = ""  # the model's words this step judged: in the JSON trace, never on the page

    def to_dict(self) -> dict:
        out = {"stage": self.stage, "decision": self.decision, "detail": self.detail}
        if self.draft_text:
            out["draft_text"] = self.draft_text
        return out


@dataclass
class Claim:
    """One checked piece of the draft: its text, the passages backing it, the ranked
    sentence it rests on and how much of that sentence it restates."""

    text: str  # may be a Quote (document words) or a CitedInParts (halves with own citations)
    backing: list  # Passage
    source: int = 0  # row in State.ranked
    coverage: float = 0.0
    drafted: str = ""  # the model's own words, when the text became a quote of the document
    leaves_out: str = ""  # the part that drops a negation its passage holds next to it (verify.py)

    @property
    def judged(self) -> str:
        """What the on-target and answer-kind checks read: the model's claim, not the quote
        that replaced it (a quote brings the sentence its "they" points back to)."""
        return self.drafted or self.text


@dataclass(frozen=True)
class VerifiedSentence:
    """A piece of the answer that passed verification, ready to show: text with its markers."""

    text: str
    citations: tuple  # Citation


@dataclass
class State:
    question: str
    history: list = field(default_factory=list)  # Turn
    passages: list = field(default_factory=list)  # Passage
    ranked: list = field(default_factory=list)  # (score, Passage, index, sentence), best first
    messages: list = field(default_factory=list)
    draft: str = ""
    trace: list[Step] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def note(self, stage: str, decision: str, detail: str = "", draft_text: str = "") -> None:
        self.trace.append(Step(stage, decision, detail, draft_text))


# --------------------------------------------------------------------------- stages


def retrieve(a: "Answerer", state: State) -> None:
    state.passages = a.retrieve_passages(state.question, state.history)
    state.timings["retrieve"] = time.perf_counter() - state.started
    state.note("retrieve", f"{len(state.passages)} passages",
               ", ".join(f"{p.label} {p.score:.2f}" for p in state.passages))


def decide_answerable(a: "Answerer", state: State) -> str:
    """Before any generation: a reason the documents cannot answer, or ""."""
    policy = a.policy
    if not state.passages:
        return "nothing was retrieved"
    best = max(p.dense for p in state.passages)
    if best < policy.min_dense and not state.passages[0].lexical > 0 and not a.referenced(state.question):
        return f"no passage is close to the question (best similarity {best:.2f})"
    unknown = grounding.missing_terms(a.without_references(state.question), a.vocabulary, a.corpus_text)
    if unknown:
        return f"the document never mentions {', '.join(unknown)}"
    return ""


def select_evidence(a: "Answerer", state: State) -> None:
    """Rank the passages' sentences against the question; the best few become the prompt."""
    state.ranked = a.rank_sentences(state.question, state.passages, state.history)
    state.messages = a.messages(state.question, state.passages, state.history, state.ranked)
    if getattr(state.messages, "trimmed", ""):  # over the policy's prompt budget (qa/budget.py)
        state.note("select_evidence", "prompt trimmed to its token budget", state.messages.trimmed)
    shown = [f"{row[1].label}: {row[3][:60]}" for row in state.ranked[:a.policy.max_sentences]]
    state.note("select_evidence", f"{min(len(state.ranked), a.policy.max_sentences)} sentences shown",
               " | ".join(shown))


def generate(a: "Answerer", state: State) -> Iterator[str]:
    """The model's tokens, as they come (each is also added to the state's draft)."""
    generation_started = time.perf_counter()
    for piece in a.generator.stream(state.messages, a.policy.max_new_tokens):
        if not state.draft:
            state.timings["first_token"] = time.perf_counter() - state.started
        state.draft += piece
        yield piece
    state.timings["generate"] = time.perf_counter() - generation_started


def split_claims(text: str, final: bool) -> list[str]:
    """The complete sentences of a draft so far (each list line is one).

    While the draft is being written its last sentence may still grow (a finished one is
    known by the start of the next), so it is left out. With `final` it counts too; one the
    token limit cut is marked with "…", so a half-sentence never reads as a finished claim
    (a list line is complete at its line break).
    """
    lines = text.split("\n")
    complete: list[str] = []
    for line in lines[:-1]:
        complete += grounding.split_sentences(line)
    last = grounding.split_sentences(lines[-1])
    if last and not final:
        last.pop()
    complete += last
    if final and last and not _is_complete(complete[-1]):
        complete[-1] = grounding.strip_markers(complete[-1]).rstrip(" ,;:-") + "…"
    return complete


def attach_evidence(a: "Answerer", state: State, sentence: str) -> Claim | None:
    """The passage(s) that support a draft sentence, checked by verify.py; None to drop it.

    A citation the model wrote is kept only if that passage supports the sentence; otherwise
    the best-supporting passage is cited; a sentence citing two passages for its two halves
    is kept when each half holds. A sentence that takes a name from the wrong item of a list
    in its passage is not supported by it.
    """
    question, passages = state.question, state.passages
    asked = grounding.content_stems(question)
    sentence = _label_mentions_as_markers(sentence, a.display_labels(passages).values())
    cited = [a.resolve(label, passages) for _, _, found in grounding.find_markers(sentence) for label in found]
    claim = _without_echoed_label(grounding.strip_markers(sentence).lstrip(":;,.-–— "), asked)  # "[¶2]: He ..."
    claim = _without_preamble(claim)
    if not grounding.content_stems(claim) - asked:
        # A bare marker, filler, or the question said back — with a yes or a no in front of it
        # too: the 0.5B model's yes/no is a coin toss (on the blind sets about half of such
        # restatements had the wrong polarity), and a restated question rarely lines up with
        # one clause of the passage for the polarity check to judge it. The passage's own
        # sentence (the fallback quote) answers instead.
        return None
    subject = a.without_references(question)
    verdicts = {p.id: a.verify(claim, a.evidence_of(p), subject, heading=a.heading_of(p)) for p in passages}
    scores = {pid: v.score if v.supported else 0.0 for pid, v in verdicts.items()}
    for p in passages:
        if scores[p.id] and grounding.misattributed(claim, a.evidence_of(p), subject):
            scores[p.id] = 0.0  # right words, wrong list item: "Feltman was the Special Adviser ..."
    backed = [p for p in cited if p is not None and scores[p.id] > 0]
    if not backed:
        best = max(passages, key=lambda p: scores[p.id])
        if scores[best.id] > 0:
            backed = [best]
    if not backed:
        halves = _backed_part_by_part(a, sentence, passages, subject)
        if halves:
            claim = CitedInParts(claim, halves)
            backed = [p for _, holding in halves for p in holding]
    if not backed:
        why = max(verdicts.values(), key=lambda v: v.score).reason if verdicts else "no passage"
        state.note("verify", "dropped a sentence", why, claim)
        return None
    backing = list({p.id: p for p in backed}.values())
    state.note("verify", "supported", "by " + ", ".join(p.label for p in backing), claim)
    source, coverage = a.source_of(claim, state.ranked, subject)
    left_out = next((verdicts[p.id].leaves_out for p in backing if verdicts[p.id].leaves_out), "")
    return Claim(claim, backing, source, coverage, leaves_out=left_out)


def _backed_part_by_part(a: "Answerer", sentence: str, passages: list, subject: str) -> list:
    """Halves of a sentence that cites two paragraphs ("A led one [¶10], while B led the
    other [¶11]"), each with the cited passages that support it; [] if any half fails."""
    halves = []
    for text, labels in grounding.cited_parts(sentence):
        cited = [p for p in (a.resolve(label, passages) for label in labels) if p is not None]
        holding = [p for p in cited if a.verify(text, a.evidence_of(p), subject, heading=a.heading_of(p)).supported]
        if not holding and grounding.content_stems(text) - grounding.content_stems(subject):
            return []
        halves.append((text, holding))
    return halves if len({p.id for _, holding in halves for p in holding}) > 1 else []


class Release:
    """Decides what of the verified claims may be shown, and when; composes the answer.

    Claims are held until the answer so far is on target, not a drift, and gives the kind
    of answer asked for; from then on each passing claim is shown at once.
    """

    def __init__(self, a: "Answerer", state: State):
        self.a, self.state = a, state
        policy, ranked = a.policy, state.ranked
        self.subject = a.without_references(state.question)
        targets = ranked[:policy.on_target]
        if state.history:
            # A follow-up reads two ways: with the conversation and alone. The sentence that
            # best matches it alone ("some delegates questioned ...") is on target too.
            alone = a.rank_sentences(state.question, state.passages)[:1]
            targets = targets + [row for row in alone if all(row[3] != t[3] for t in targets)]
        self.target_text = " ".join(row[3] for row in targets)
        self.target_ids = {row[1].id for row in targets}
        # "What does ¶11 say?" asks for any of ¶11: every sentence of it is on target.
        self.named = bool(a.referenced(state.question)) and not grounding.content_stems(self.subject) - _OPEN_REQUEST
        self.pending: list[Claim] = []
        self.shown: list[Claim] = []
        self.seen: set[str] = set()
        self.refused = False
        self.said_refusal = False  # the model's bare "NOT IN DOCUMENT"
        self.dropped = 0
        self.quoted_from: list[str] = []

    # ------------------------------------------------------------------ per claim

    def on_target(self, claim: Claim) -> bool:
        if self.named:
            return True
        # A claim's own paragraph's heading counts ("Recipients" says what the address block
        # is); other headings would excuse any claim.
        heading = " ".join(p.section for p in claim.backing if p.id in self.target_ids)
        return grounding.support(claim.judged, self.target_text, self.subject, self.a.idf, self.a.policy.on_target,
                                 self.a.vocabulary, require_subject=False, heading=heading).score >= self.a.policy.min_support

    def drifted(self, claim: Claim) -> bool:
        ranked = self.state.ranked
        if self.named or claim.source == 0 or ranked[0][0] - ranked[claim.source][0] < self.a.policy.drift_margin:
            return False
        # The sentence next to the best one, in its paragraph, is its context, not a drift:
        # "We use feof() rather than ..." ranks first for "Why check feof()?", and the answer
        # is the next sentence, "The reason is that ...".
        best, own = ranked[0], ranked[claim.source]
        return not (own[1].id == best[1].id and abs(own[2] - best[2]) == 1)

    def _as_quote_if_restated(self, claim: Claim) -> Claim:
        """A rewrite of most of one sentence is where the model drops qualifiers ("only as a
        measure of last resort"): the sentence itself says it exactly. A rewrite of (nearly)
        all of it that stands on its own keeps its words."""
        policy, ranked = self.a.policy, self.state.ranked
        n = claim.source
        partial = claim.coverage < policy.full_restatement or _POINTS_BACK.match(claim.text)
        # A short sentence (an address, a title) costs little to quote in full.
        needed = policy.restatement / 2 if len(ranked[n][3].split()) <= policy.short_sentence else policy.restatement
        if claim.coverage >= needed and partial and n < policy.on_target and not isinstance(claim.text, CitedInParts):
            passage = ranked[n][1]
            self.quoted_from.append(passage.label)
            self.state.note("compose", "quoted the sentence it restates", passage.label)
            return self._quoted(n, claim.judged)
        return claim

    def _restated_sentence(self, sentence: str) -> Claim | None:
        """The question's best-ranked sentence that a draft sentence restates when only the
        draft's own words (what it says beyond the question) are counted, quoted; else None.

        The verifier also wants the question's words a claim repeats to be in its evidence, so
        that right words about the wrong thing do not pass. But a reader asks in their own
        words ("Which daemons does the document give as examples of running as
        daemon.daemon?"), the model says them back ("The document gives examples ... by
        mentioning ... portmap, atd"), and the sentence never says "example": the claim fails
        although all it adds is the document's. The sentence it takes that from is the answer,
        in the document's words; it must be among the question's best-ranked (Policy.on_target:
        the model was shown five, and counting the fourth and fifth too let a draft that only
        copied its evidence answer an unrelated question), within the drift margin of the
        best, share at least one word with the question (a draft that borrows names from the
        evidence to answer "To whom is the letter addressed?" restates a sentence about a
        panel), carry every name and number the claim adds (its paragraph every name the
        question asks about), and agree with it on negation."""
        ranked, policy, a = self.state.ranked, self.a.policy, self.a
        if not ranked:
            return None
        claim = grounding.strip_markers(sentence)
        question = a.without_references(self.state.question)
        asked = grounding.content_stems(question) - grounding.ANSWER_TYPE_WORDS
        own = grounding.content_stems(claim) - asked - grounding.ANSWER_TYPE_WORDS
        if len(own) < policy.min_own_words:
            return None
        for n, (score, passage, _, text) in enumerate(ranked[:policy.on_target]):
            if ranked[0][0] - score >= policy.drift_margin:
                break
            heading = a.heading_of(passage)
            if grounding.weighted_share(own, grounding.content_stems(text), a.idf) < policy.own_restatement:
                continue
            if not asked & (grounding.content_stems(text) | grounding.content_stems(heading)):
                continue  # about something else: "To whom is the letter addressed?" -> a sentence of names
            # The names the question asks about must be in the sentence's paragraph ("How does
            # gzip compare with bzip2?" is not answered by a paragraph that never names bzip2),
            # and the names and numbers the claim adds in the sentence itself.
            about = grounding.support(claim, a.evidence_of(passage), question, a.idf, 1, a.vocabulary,
                                      heading=heading, names=a.names)
            found = grounding.support(claim, text, question, a.idf, 1, a.vocabulary, require_subject=False,
                                      heading=heading, names=a.names)
            if about.missing or found.missing or verify.missing_numbers(claim, text, question) \
                    or verify.polarity_conflict(claim, text, a.idf):
                continue
            self.quoted_from.append(passage.label)
            self.state.note("verify", "its own words restate a best-ranked sentence: quoted it", passage.label, claim)
            return self._quoted(n)
        return None

    def _quoted_with_what_it_leaves_out(self, claim: Claim) -> Claim | None:
        """A claim that restates words next to a negation of its passage but leaves the negation
        out ("mount it" for "mount (but not reformat) it") says no falsehood, but may drop the
        point: the sentence it rests on is quoted instead; without one in its passage, it goes."""
        ranked = self.state.ranked
        if not ranked or ranked[claim.source][1].id not in {p.id for p in claim.backing}:
            self.state.note("verify", "dropped a sentence", f"leaves out a negation: {claim.leaves_out!r}", claim.text)
            return None
        passage = ranked[claim.source][1]
        self.quoted_from.append(passage.label)
        self.state.note("compose", "quoted the sentence whose negation the draft left out", passage.label)
        return self._quoted(claim.source, claim.judged)

    def _quoted(self, n: int, drafted: str = "") -> Claim:
        """Ranked sentence n as a quote of the document, backed by its passage (and by the
        paragraph that opens its list, when the quote starts with that line)."""
        _, passage, _, sentence = self.state.ranked[n]
        quote = self.a.quote(passage, sentence, self.state.ranked)
        lead = getattr(quote, "lead_in", None)
        return Claim(quote, ([lead] if lead else []) + [passage], n, 1.0, drafted)

    def offer(self, sentence: str) -> list[VerifiedSentence]:
        """Check one draft sentence; return what may be shown now (possibly nothing)."""
        if self.refused:
            return []
        plain = grounding.strip_markers(sentence)
        if plain.upper().rstrip(" .:!") == MODEL_REFUSAL:
            self.said_refusal = True  # it sometimes refuses, then answers: read on
            return []
        if plain.upper().startswith(MODEL_REFUSAL):
            plain = sentence = plain[len(MODEL_REFUSAL):].strip(" .:")
        if _REFUSAL_PATTERNS.search(plain):
            if not self.shown:
                self.refused = True
                self.state.note("verify", "the model found no answer in the passages", "", plain)
            return []
        key = plain.lower()
        if key in self.seen:
            return []  # small models repeat themselves
        self.seen.add(key)
        claim = attach_evidence(self.a, self.state, sentence) or self._restated_sentence(sentence)
        if claim is None:
            self.dropped += 1
            return []
        if claim.leaves_out:
            claim = self._quoted_with_what_it_leaves_out(claim)
            if claim is None:
                self.dropped += 1
                return []
        if self.state.ranked:
            claim = self._as_quote_if_restated(claim)
        if any(c.text == claim.text for c in self.shown + self.pending):
            return []
        self.pending.append(claim)
        if not self.shown and not self._ready():
            return []
        released, self.pending = self.pending, []
        self.shown += released
        return [self._render(c) for c in released]

    def _ready(self) -> bool:
        if not self.state.ranked:
            return True
        if not any(self.on_target(c) for c in self.pending):
            return False
        if all(self.drifted(c) for c in self.pending):
            return False  # hold: a later claim may rest on a better sentence
        return grounding.gives_expected_answer(" ".join(c.text for c in self.pending), self.state.question,
                                               self.a.names)

    # ------------------------------------------------------------------ the end

    def finish(self) -> tuple[list[VerifiedSentence], "Answer"]:
        """What is left to show, and the answer: the shown claims (plus a second part for a
        two-part question), else the best quote, else a decline."""
        extra: list[Claim] = []
        if self.shown:
            extra = self._second_part(self.shown)
            notes = [f"{self.dropped} unsupported sentence(s) removed"] if self.dropped else []
            if self.quoted_from:
                notes.append("restated sentence(s) quoted from " + ", ".join(dict.fromkeys(self.quoted_from)))
            return self._done(extra, "; ".join(notes))
        why = self._why_nothing_shown()
        self.state.note("release", "nothing passed", why)
        ranked = self.state.ranked
        if ranked and why == "the draft answered from a weaker sentence":
            best = self._quoted(0)
            self.shown = [best]
            return self._done(self._second_part([best]), "the draft answered from a weaker sentence; quoted the best one instead",
                              first=True)
        if why == "the draft answered from a far weaker sentence":
            return [], self._decline(why)
        return self._fallback(why)

    def _why_nothing_shown(self) -> str:
        if self.refused or (self.said_refusal and not self.pending):
            return "the model found no answer in the passages"
        if not self.pending:
            return "no sentence of the draft is supported by the passages"
        if not any(self.on_target(c) for c in self.pending):
            return "the draft does not answer the question"
        ranked = self.state.ranked
        if all(self.drifted(c) for c in self.pending):
            if ranked[0][0] < self._fallback_bar():
                return "the draft answered from a far weaker sentence"
            if grounding.gives_expected_answer(self._quoted(0).text, self.state.question, self.a.names):
                return "the draft answered from a weaker sentence"
        kind = grounding.expected_answer(self.state.question)
        return f"the draft gives no {kind} for the question"

    def _fallback(self, why: str):
        """The best sentence that is close enough to the question and gives the kind of answer
        asked for (a number for "how long"), quoted; else decline. Only sentences within the
        drift margin of the best one are candidates: a far weaker one answers something else."""
        ranked, policy = self.state.ranked, self.a.policy
        bar, pointed_at = self._fallback_bar(), bool(self.a.referenced(self.state.question))
        for n, (score, *_) in enumerate(ranked):
            if ranked[0][0] - score >= policy.drift_margin:
                break
            best = self._quoted(n)
            close = score >= bar or pointed_at
            if close and grounding.gives_expected_answer(best.text, self.state.question, self.a.names):
                self.shown = [best]
                return self._done(self._second_part([best]), f"{why}; quoted the passage instead", first=True)
        return [], self._decline(why)

    def _fallback_bar(self) -> float:
        policy = self.a.policy
        return policy.min_yes_no_fallback if grounding.asks_yes_no(self.state.question) else policy.min_fallback

    def _runner_up(self, kept: list[Claim]) -> list[Claim]:
        """The sentence that scores about as well as the best one the answer rests on,
        quoted after it: when two sentences are that close the ranker cannot tell which
        holds the answer (an option, and the sentence that gives its default), and showing
        both costs a sentence where showing the wrong one costs the answer."""
        ranked, policy = self.state.ranked, self.a.policy
        sources = {c.source for c in kept}
        if not ranked or not sources:
            return []
        shown = " ".join(str(c.text) for c in kept)
        top = max(ranked[n][0] for n in sources)
        for n, (score, passage, _, sentence) in enumerate(ranked):
            if top - score > policy.runner_up_margin:
                break
            if n in sources or sentence.strip() in shown or score < policy.min_runner_up:
                continue
            runner_up = self._quoted(n)
            # (A quote may run on into the next sentence: it must not repeat what is shown.)
            if any(str(c.text).strip(" .") in str(runner_up.text) for c in kept):
                continue
            self.state.note("compose", "added the runner-up sentence", passage.label)
            return [runner_up]
        return []

    def _second_part(self, kept: list[Claim]) -> list[Claim]:
        """A two-part question usually needs two paragraphs and the model tends to answer one:
        add the best sentence of another paragraph if it matches nearly as well as the best.
        Any other question gets the runner-up sentence when it is as close as the best."""
        if not grounding.asks_several_things(self.state.question):
            return self._runner_up(kept)
        ranked, policy = self.state.ranked, self.a.policy
        sources = {c.source for c in kept if c.source < policy.on_target}
        answered = {ranked[n][1].id for n in sources}
        for n, (score, passage, *_) in enumerate(ranked):
            if ranked[0][0] - score > policy.second_part_margin:
                break
            if n not in sources and passage.id not in answered:
                self.state.note("compose", "added a second part", passage.label)
                return [self._quoted(n)]
        return []

    def _render(self, claim: Claim) -> VerifiedSentence:
        # (A quote's list lead-in may come from a paragraph that was not retrieved.)
        retrieved = {p.id for p in self.state.passages}
        labels = self.a.display_labels(self.state.passages + [p for p in claim.backing if p.id not in retrieved])
        return VerifiedSentence(_render_claim(claim, labels), tuple(self.a.citation(p) for p in claim.backing))

    def _done(self, extra: list[Claim], reason: str, first: bool = False):
        self.shown += extra
        new = (self.shown if first else extra)
        pieces = [self._render(c) for c in new]
        everything = [self._render(c) for c in self.shown]
        citations = {c.id: c for piece in everything for c in piece.citations}
        quoted = any(isinstance(c.text, Quote) for c in self.shown)
        from .answer import Answer

        answer = Answer(self.state.question, " ".join(p.text for p in everything), False, list(citations.values()),
                        self.state.passages, self.state.timings, reason, self.state.draft, quoted,
                        trace=[s.to_dict() for s in self.state.trace])
        return pieces, answer

    def _decline(self, why: str) -> "Answer":
        from .answer import Answer

        return Answer(self.state.question, NOT_IN_DOCUMENT, True, [], self.state.passages, self.state.timings,
                      why, self.state.draft, trace=[s.to_dict() for s in self.state.trace])


def run(a: "Answerer", state: State) -> Iterator["VerifiedSentence | Answer"]:
    """The whole pipeline: verified sentences as they pass, then the Answer last."""
    from .answer import Answer

    retrieve(a, state)
    reason = decide_answerable(a, state)
    if reason:
        state.note("decide_answerable", "declined before generating", reason)
        state.timings["total"] = time.perf_counter() - state.started
        yield Answer(state.question, NOT_IN_DOCUMENT, True, [], state.passages, state.timings, reason,
                     trace=[s.to_dict() for s in state.trace])
        return
    state.note("decide_answerable", "answerable", "a passage is close and every name asked about is in the documents")
    select_evidence(a, state)
    release = Release(a, state)
    offered = 0  # sentences of the draft already checked
    for _ in generate(a, state):
        sentences = split_claims(state.draft, final=False)
        for sentence in sentences[offered:]:
            yield from _shown(state, release.offer(sentence))
        offered = max(offered, len(sentences))
        if release.refused:
            break  # the model said the passages have no answer: no need to read on
    for sentence in split_claims(state.draft, final=True)[offered:]:
        yield from _shown(state, release.offer(sentence))
    pieces, answer = release.finish()
    yield from _shown(state, pieces)
    state.timings["total"] = time.perf_counter() - state.started
    answer.timings = state.timings
    answer.trace = [s.to_dict() for s in state.trace]
    yield answer


def _shown(state: State, pieces: list[VerifiedSentence]) -> Iterator[VerifiedSentence]:
    for piece in pieces:
        state.timings.setdefault("first_verified", time.perf_counter() - state.started)
        yield piece


def check_draft(a: "Answerer", state: State, draft: str) -> "Answer":
    """A whole draft through the claim stages at once (tests, replays of recorded drafts)."""
    state.draft = draft
    release = Release(a, state)
    for sentence in split_claims(draft.strip(), final=True):
        release.offer(sentence)
    _, answer = release.finish()
    return answer


# --------------------------------------------------------------------------- text helpers

_OPEN_REQUEST = frozenset(grounding.stem(w) for w in lexicon.words("open_requests"))

# A sentence that opens by pointing back ("This would permit...", "He drew a direct
# connection...", "In their view, ...") means little alone: quoted, it brings the one before.
_POINTS_BACK = re.compile(
    r"^(?:[^,]{1,120},\s*|in\s+)?(this|these|those|he|she|it|they|his|her|its|their|such)\b", re.I)

_LABEL = re.compile(r"^([^:\n]{1,60}):\s+(?=\S)")
_META_NOUNS = "|".join(sorted(lexicon.words("meta_nouns")))
_META_VERBS = "|".join(sorted(lexicon.words("meta_verbs")))
_PREAMBLE = re.compile(rf"^(?:(?:according to|based on|from|in) (?:the |this )?(?:{_META_NOUNS})\b[^,]{{0,40}},\s*"
                       rf"|(?:the|this) (?:{_META_NOUNS}) (?:{_META_VERBS})(?: that\s+|:\s*|\s+(?=[\"“])))",
                       re.IGNORECASE)


def _label_mentions_as_markers(sentence: str, labels) -> str:
    """A paragraph's position label written as text ("In zlib Usage Example ¶4, you set ...",
    "The passage ¶8 states ...") is a citation, not part of the claim: its "4" is no number
    the passage must hold. Only labels with "¶" are taken: a clause number ("3.3") can be
    content ("Section 3.3 allows ...")."""
    for label in sorted((l for l in labels if "¶" in l), key=len, reverse=True):
        pattern = re.escape(label)
        lead = re.match(rf"\s*(?:in|from|according to|see)\s+(?:the\s+)?{pattern}\s*[,:]?\s*", sentence, re.IGNORECASE)
        if lead and sentence[lead.end():].strip():
            rest = sentence[lead.end():]
            sentence = rest[0].upper() + rest[1:] + f" [{label}]"
            continue
        sentence = re.sub(rf"(?<![\[\w]){pattern}(?![\w\]])", f"[{label}]", sentence, flags=re.IGNORECASE)
    return sentence


def _without_preamble(claim: str) -> str:
    """"The passage states that the MPL is maintained by Mozilla." -> "the MPL is maintained
    by Mozilla.": the model's talk about its sources is no part of what it claims."""
    match = _PREAMBLE.match(claim)
    if not match or not claim[match.end():].strip():
        return claim
    rest = claim[match.end():]
    return rest[0].upper() + rest[1:]


class Quote(str):
    """Text taken verbatim from a document (as opposed to the model's words)."""


class CitedInParts(str):
    """A claim whose halves rest on different paragraphs, with those halves and paragraphs."""

    halves: list

    def __new__(cls, text: str, halves: list):
        claim = super().__new__(cls, text)
        claim.halves = halves
        return claim

    def with_markers(self, labels: dict[str, str]) -> str:
        """The halves, each followed by its markers; a joining word stays between them."""
        pieces = []
        for text, passages in self.halves:
            markers = "".join(f" [{labels[p.id]}]" for p in passages)
            body, joint = re.match(r"(.*?)((?:[,;]?\s+(?:while|whereas|and|but|whilst))?)$", text, re.S).groups()
            pieces.append(f"{body}{markers}{joint}")
        return " ".join(pieces).rstrip(" ,;") + "."


def _render_claim(claim: Claim, labels: dict[str, str]) -> str:
    if isinstance(claim.text, CitedInParts):
        # Each half keeps its own citation: "A led one [¶10], while B led the other [¶11]."
        return claim.text.with_markers(labels)
    markers = "".join(f" [{labels[p.id]}]" for p in claim.backing)
    parts = []
    # A quote can be several sentences ("... He drew a direct connection ..."): each carries
    # its citation, so every sentence of the answer shows where it comes from.
    for sentence in grounding.split_sentences(claim.text) or [claim.text]:
        body = sentence.rstrip()
        end = body[-1] if body and body[-1] in ".!?…" else "."
        body = body.rstrip(".!?…")
        # A cut sentence keeps its ellipsis before the citation: "… the use of the… [¶11]".
        parts.append(f"{body}…{markers}" if end == "…" else f"{body}{markers}{end}")
    return " ".join(parts)


def _without_echoed_label(claim: str, question_stems: set[str]) -> str:
    """A list line whose label only repeats the question, "Pair of countries: Australia and
    Ghana", is its value: the label's words are the question's, not the passage's, and would
    count against the claim in the support check. Labels with names or numbers stay."""
    match = _LABEL.match(claim)
    if not match or grounding.key_terms(match.group(1)):
        return claim
    if grounding.content_stems(match.group(1)) <= question_stems:
        return claim[match.end():]
    return claim


def _is_complete(sentence: str) -> bool:
    return grounding.strip_markers(sentence).rstrip("\"')] ").endswith((".", "!", "?", "…"))
