"""The prompt's token budget: what the generator is sent always fits, whatever users send.

A prompt is the system turn (the instructions and the quoted evidence sentences), the
earlier turns of the conversation and the question. Each part has a cap of its own in
characters (qa/limits.py; the paragraph length in qa/documents.py), but characters are not
tokens, and a document can hold one "sentence" of two megabytes (a line with no sentence
end and no space: one word, one paragraph, one sentence). Unbounded, such a prompt held the
only model slot for minutes, or overflowed the model's context.

`fit` trims a prompt to `Policy.prompt_tokens`, in this order, until it fits:

1. the earlier turns, oldest first: the question and its evidence matter more than the
   conversation before it;
2. the evidence sentences, least relevant first, down to the best one;
3. the best sentence itself, cut at a word ("…").

Only when the question alone (with the instructions) is over the budget does it give up,
with a QuestionError. The checks after generation read the passages themselves, not the
prompt, so trimming changes what the model is shown, never what an answer is checked against.

No ML imports: tokens are counted by the generator's own tokenizer when it has one
(`count_tokens(messages)`, qa/models.py), else estimated from characters.
"""

from __future__ import annotations

from typing import Callable

from .errors import QuestionError

# An estimate for generators without a tokenizer here (a model server): English prose runs
# at about 4 characters a token in Qwen's and Llama's tokenizers; 3 leaves room for names,
# numbers and punctuation, which tokenize shorter.
CHARS_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4  # a chat template's role markers and separators, per message
# A sentence longer than this many characters per token of budget cannot fit: it is cut to
# that before its tokens are counted at all (tokenizing 2 MB to learn that is slow).
MAX_CHARS_PER_TOKEN = 16
ELLIPSIS = "…"

Count = Callable[[list[dict]], int]


class Prompt(list):
    """The messages, as a list, with what was trimmed to fit the budget ("" if nothing)."""

    trimmed: str = ""
    tokens: int = 0


def estimate_tokens(messages: list[dict]) -> int:
    return sum(len(m.get("content", "")) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE for m in messages) + TOKENS_PER_MESSAGE


def counter(generator) -> Count:
    """The generator's own token count of a prompt, else the estimate."""
    count = getattr(generator, "count_tokens", None)
    return count if callable(count) else estimate_tokens


def fit(build: Callable[[list, list], list[dict]], turns: list, sentences: list, count: Count,
        budget: int) -> Prompt:
    """`build(turns, sentences)` trimmed until `count` says it fits in `budget` tokens.

    `turns` are the earlier turns, oldest first; `sentences` the ranked evidence rows
    (score, passage, index, text), best first — the rows `build` quotes.
    """
    turns, sentences = list(turns), list(sentences)
    dropped_turns = dropped_sentences = 0
    cut = False
    limit = max(1, budget) * MAX_CHARS_PER_TOKEN
    for n, row in enumerate(sentences):
        if len(row[3]) > limit:  # cannot fit whole: not worth counting whole
            sentences[n] = _with_text(row, _cut(row[3], limit))
            cut = True
    messages = build(turns, sentences)
    tokens = count(messages)
    while tokens > budget and turns:
        turns.pop(0)
        dropped_turns += 1
        messages = build(turns, sentences)
        tokens = count(messages)
    while tokens > budget and len(sentences) > 1:
        sentences.pop()
        dropped_sentences += 1
        messages = build(turns, sentences)
        tokens = count(messages)
    if tokens > budget and sentences:
        # The best sentence alone is too long: the longest start of it that fits, found by
        # halving (a dozen counts for a sentence of any length).
        text = sentences[0][3]
        low, high, best = 0, len(text), None
        while low < high:
            middle = (low + high + 1) // 2
            trial = build(turns, [_with_text(sentences[0], _cut(text, middle))])
            trial_tokens = count(trial)
            if trial_tokens <= budget:
                low, best = middle, (trial, trial_tokens)
            else:
                high = middle - 1
        if best is not None:
            messages, tokens = best
            cut = True
    if tokens > budget:
        raise QuestionError(f"the question is too long for the model's prompt ({tokens:,} tokens with the "
                            f"instructions; the budget is {budget:,}): ask a shorter question")
    prompt = Prompt(messages)
    prompt.tokens = tokens
    notes = []
    if dropped_turns:
        notes.append(f"{dropped_turns} earlier turn(s) left out")
    if dropped_sentences:
        notes.append(f"{dropped_sentences} less relevant sentence(s) left out")
    if cut:
        notes.append("an evidence sentence cut short")
    prompt.trimmed = "; ".join(notes)
    return prompt


def _cut(text: str, length: int) -> str:
    """The first `length` characters of a text, ending at a word where there is one."""
    if length >= len(text):
        return text
    head = text[:length]
    space = head.rfind(" ")
    if space > length // 2:
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def _with_text(row: tuple, text: str) -> tuple:
    return (row[0], row[1], row[2], text, *row[4:])
