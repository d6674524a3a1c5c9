"""Every threshold of the answer pipeline, in one frozen object, each with the reason for its value.

The values were chosen by measurement on the shipped test sets (docs/EVALUATION.md); none of
them is a switch for turning a rule off. `qa eval --compare "k=4" "min_support=0.6"` runs
the same questions under other values, side by side.

The stages (qa/pipeline.py) read what they need from here; nothing else in the answer path
holds a number that changes what an answer says.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    # ---------------------------------------------------------------- retrieval
    k: int = 3  # passages shown to the model: k = 4 or 5 gave the 0.5B model more to confuse (0.789 vs 0.868 key facts)
    mode: str = "hybrid"  # meaning (FAISS) + words (BM25): names and numbers need the words
    # Share of the cosine in the fused score; BM25 is scaled by its best score. 0.6 was chosen
    # on the bundled letter's sets; on all 21 tuned-on sets, 0.7 put a gold paragraph in the
    # top 3 more often (mean recall@3 0.820 -> 0.833, up on 11 sets, down on 2) and the live
    # answers carried more key facts (0.557 -> 0.564, up on 6, down on 2). On the blind LGPL
    # set it found more gold paragraphs (recall@3 0.750 -> 0.795) but lost two answers.
    dense_weight: float = 0.7
    fusion: str = "weighted"  # a tuned weighted sum beat RRF on the test sets
    history_turns: int = 2  # earlier turns read for a follow-up ("and who led it?")
    follow_up_discount: float = 0.95  # hits found only with the earlier turns count slightly less: a new topic wins
    max_search_chars: int = 1500  # longer texts carry enough words, and must stay under the search limit

    # ---------------------------------------------------------------- deciding to answer
    min_dense: float = 0.25  # below this best cosine (and no shared word) the document has nothing close

    # ---------------------------------------------------------------- evidence
    max_sentences: int = 5  # evidence sentences shown to the model: it copies the first it sees, so fewer is better
    sentence_lexical_weight: float = 0.5  # weight of the question's rare words next to meaning when ranking sentences
    pre_embed_limit: int = 500  # paragraphs; a larger corpus embeds its sentences on first use, not at start

    # ---------------------------------------------------------------- generation
    max_new_tokens: int = 56  # one or two short sentences; also bounds the slowest answer
    # Tokens in the whole prompt (evidence, earlier turns, question; qa/budget.py trims to it).
    # The 431 test-set prompts take 281 (median) to 890 tokens (zlib-how's code): all stay
    # whole. Reading 1,024 took 5.7 s on one thread of a busy machine (1,519: 10.6 s), so a
    # full prompt is still answered within 10 s; and it is far under a llama.cpp slot's 4,096.
    prompt_tokens: int = 1024
    prompt_labels: str = "document"  # "document": the passages' own labels; "sources": S1, S2, S3 (see Answerer.prompt_labels)

    # ---------------------------------------------------------------- verification
    min_support: float = 0.5  # share of a claim's content words (rarer weigh more) its evidence must contain
    support_window: int = 2  # consecutive sentences a claim may draw on: wider windows let names drift
    on_target: int = 3  # a claim must rest on one of the question's best-ranked sentences
    # Content words after a negation that it turns ("not [controlled] by"): a claim that shares
    # none of them restates the words around the negation, not what it negates.
    negated_span: int = 3
    # A claim that fails only because it words the question its own way is answered with the
    # sentence its own words (beyond the question's) restate: at least this share of them, by
    # rarity, and at least this many of them (one word, "yes", "it", says nothing to match).
    own_restatement: float = 0.8
    min_own_words: int = 2

    # ---------------------------------------------------------------- composing
    min_fallback: float = 0.8  # sentence score a quoted fallback needs: below it, decline rather than quote
    # ... for a yes/no question ("Can I sublicense it?"). The 0.5B model's own yes or no is a
    # coin toss, so the sentence that decides it is the answer; such a question presupposes
    # its topic (its names are checked before generation), and users word it in their own
    # terms, so the sentence that answers it is rarely as close as a restated fact.
    min_yes_no_fallback: float = 0.5
    drift_margin: float = 0.25  # best sentence this far above the draft's own: quote the best instead
    restatement: float = 0.6  # share of a sentence a claim rewrites before the sentence itself is quoted
    full_restatement: float = 0.85  # ... unless it rewrites this much: nothing was left out, keep its words
    short_sentence: int = 16  # words; a claim restating half of a sentence this short quotes it
    list_items: int = 12  # paragraphs looked back over for the line that opens a quoted item's list
    second_part_margin: float = 0.25  # two-part questions: how far below the best a second source may score
    # Any other answer also quotes the sentence ranked within this of the best one it rests on.
    # Replayed on the previous release's drafts of the fifteen older sets: key facts +0.037 on
    # average (up on 11 sets, down on none), citation precision -0.019, median answer 27 -> 38
    # words; 0.025 gave +0.030 / -0.017, 0.1 +0.018 / -0.03 when only quotes got one. Only
    # runner-ups from other paragraphs: +0.025 / -0.035 (each adds a citation).
    runner_up_margin: float = 0.05
    min_runner_up: float = 0.5  # ... and scores at least this (the bar of the weakest quote, min_yes_no_fallback)


DEFAULT_POLICY = Policy()
