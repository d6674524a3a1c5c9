"""Metric code against hand-computed cases, including the traps peers fell into."""

import json
import math

import pytest

from qa.documents import load_documents
from qa.errors import TestSetError
from qa.evaluate import (DEFAULT_TESTSET, alce_citation_scores, key_fact_hit, load_testset, ndcg_at,
                         parse_configuration, recall_at, reciprocal_rank, token_f1)

from .conftest import REPO, SEED


def test_recall_at_k():
    assert recall_at(["a", "b", "c"], {"b"}, 1) == 0.0
    assert recall_at(["a", "b", "c"], {"b"}, 3) == 1.0
    assert recall_at(["a", "b", "c"], {"a", "z"}, 3) == 0.5


def test_repeated_ids_count_once():
    # A ranking that repeats a gold id must not score above 1 or push others out unfairly.
    assert recall_at(["a", "a", "a"], {"a"}, 3) == 1.0
    assert recall_at(["a", "a", "b"], {"a", "b"}, 2) == 1.0  # duplicates removed before the cut
    assert ndcg_at(["a", "a", "a"], {"a"}, 10) == pytest.approx(1.0)
    assert reciprocal_rank(["x", "x", "a"], {"a"}) == 0.5


def test_mrr():
    assert reciprocal_rank(["x", "y", "a"], {"a", "b"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x"], {"a"}) == 0.0


def test_ndcg_hand_computed():
    # gold {a, b}; ranking [a, x, b]: DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    assert ndcg_at(["a", "x", "b"], {"a", "b"}, 10) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))


def test_ndcg_not_inflated_when_fewer_than_k_retrieved():
    # Only one of two gold paragraphs retrieved, in a list of one: the ideal uses both gold.
    assert ndcg_at(["a"], {"a", "b"}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at([], {"a"}, 10) == 0.0


def test_empty_gold_sets_score_zero_not_error():
    assert recall_at(["a"], set(), 5) == 0.0
    assert ndcg_at(["a"], set(), 10) == 0.0
    assert reciprocal_rank(["a"], set()) == 0.0


def test_key_facts_and_alternatives():
    assert key_fact_hit("France and Mexico led it [¶11].", ["France", "Mexico"])
    assert not key_fact_hit("France led it.", ["France", "Mexico"])
    assert key_fact_hit("Seventy-three States spoke.", ["73|seventy-three"])
    assert not key_fact_hit("", ["France"])
    # Whole words: a "no" is not in "notice", a 30 not in 300.
    assert not key_fact_hit("Keep the notice.", ["no|not"])
    assert key_fact_hit("No, you may not.", ["no|not"])
    assert not key_fact_hit("It costs 300 euros.", ["30"])
    assert key_fact_hit("Within 30 days [5.1].", ["30 days"])
    assert key_fact_hit("See http://mozilla.org/MPL/2.0/ for a copy.", ["http://mozilla.org/MPL/2.0/"])


def test_key_facts_meet_their_inflections_but_not_other_words():
    assert key_fact_hit("Modified files must carry prominent notices [4(b)].", ["prominent notice"])
    assert key_fact_hit("It could be used from July 13th.", ["July 13"])
    assert key_fact_hit("The licensed work.", ["license"])
    assert not key_fact_hit("It could be used from July 13th.", ["July 1"])
    assert not key_fact_hit("Keep the notices.", ["no|not"])
    assert not key_fact_hit("It costs 300th euros.", ["30"])
    # Punctuation is part of an option or an address: matched exactly, never by its letters.
    assert not key_fact_hit("Use h for help.", ["-H"])
    assert key_fact_hit("Use -H for that.", ["-H"])


def test_token_f1_including_empty_answers():
    assert token_f1("France and Mexico [¶11].", "France and Mexico") == 1.0
    assert token_f1("", "France and Mexico") == 0.0
    assert token_f1("", "") == 1.0
    # pred [france, mexico, led], ref [france, and, mexico] (only articles are dropped):
    # P = 2/3, R = 2/3 -> F1 = 2/3
    assert token_f1("France Mexico led", "France and Mexico") == pytest.approx(2 / 3)
    assert token_f1("the France", "France") == 1.0


def test_alce_citation_scores():
    texts = {"p11": "The initiative led by France and Mexico calls for restraint in the use of the veto.",
             "p10": "Australia and Ghana led an initiative on the formal agenda."}
    labels = {"¶11": "p11", "11": "p11", "¶10": "p10", "10": "p10"}
    recall, precision = alce_citation_scores("France and Mexico led the veto initiative [¶11] [¶10].", texts, labels)
    assert recall == 1.0 and precision == 0.5  # ¶10 is neither sufficient nor needed
    recall, precision = alce_citation_scores("Canberra is the capital [¶10].", texts, labels)
    assert recall == 0.0 and precision == 0.0
    assert alce_citation_scores("", texts, labels) == (None, None)
    # A sentence citing each half where it is said: each half against its own citation.
    halves = "France and Mexico called for veto restraint [¶11], while Australia and Ghana led an initiative [¶10]."
    assert alce_citation_scores(halves, texts, labels) == (1.0, 1.0)
    swapped = "France and Mexico called for veto restraint [¶10], while Australia and Ghana led an initiative [¶11]."
    assert alce_citation_scores(swapped, texts, labels) == (0.0, 0.0)


def test_shipped_testset_is_valid_and_big_enough():
    items = load_testset(DEFAULT_TESTSET)
    assert len(items) >= 40
    assert sum(not i.answerable for i in items) >= 8
    kinds = {i.type for i in items}
    assert {"factual", "paraphrase", "multi", "followup", "unanswerable"} <= kinds


@pytest.mark.parametrize("path", sorted((REPO / "testsets").glob("*.jsonl")), ids=lambda p: p.name)
def test_every_shipped_testset_names_paragraphs_the_document_has(path):
    known = {p.id for document in load_documents([SEED]) for p in document.paragraphs}
    items = load_testset(path, known_ids=known)
    assert any(i.answerable for i in items) and any(not i.answerable for i in items)


@pytest.mark.parametrize("line,message", [
    ("{bad json", "line 2: not valid JSON"),
    (json.dumps({"id": "x", "question": "q?", "answer": "a"}), 'line 2: missing field "gold"'),
    (json.dumps({"id": "x", "question": "q?", "gold": "p1", "answer": "a"}), 'line 2: field "gold"'),
    (json.dumps({"id": "x", "question": "q?", "gold": ["nope#1"], "answer": "a"}), "line 2: unknown paragraph id"),
    (json.dumps({"id": "a", "question": "q?", "gold": [], "answer": "a"}), "line 2: duplicate id"),
])
def test_bad_testsets_name_the_line(tmp_path, line, message):
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "ok?", "gold": [], "answer": ""}) + "\n" + line + "\n")
    with pytest.raises(TestSetError, match=message.replace("line ", "set.jsonl:")):
        load_testset(path, known_ids={"doc#1"})


def test_parse_configuration():
    assert parse_configuration("mode=dense,k=5") == {"mode": "dense", "k": 5}
    with pytest.raises(TestSetError, match="unknown setting"):
        parse_configuration("colour=blue")


def test_replayed_drafts_give_the_same_answers_as_the_run_that_wrote_them(tmp_path, seed_index):
    from qa.answer import Answerer, AnswerSettings
    from qa.evaluate import ReplayedDrafts, _recorded_drafts

    from .conftest import ScriptedGenerator

    question = "Which countries led the initiative on veto restraint?"
    draft = "France and Mexico led the initiative on veto restraint [¶10]."
    settings = AnswerSettings(min_dense=0.05)
    live = Answerer(seed_index, ScriptedGenerator(draft), settings).ask(question)
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"question": question, "draft": live.draft}) + "\n")
    replayed = Answerer(seed_index, ReplayedDrafts(_recorded_drafts(results)), settings).ask(question)
    assert replayed.text == live.text == "France and Mexico led the initiative on veto restraint [¶11]."
    with pytest.raises(TestSetError, match="no recorded draft"):
        Answerer(seed_index, ReplayedDrafts({}), settings).ask(question)


def test_a_decline_carries_no_key_facts(seed_index):
    """"The document does not say." contains "not": it must not score a "not|no" fact."""
    from qa.answer import Answer, Answerer
    from qa.evaluate import Result, TestItem, score

    from .conftest import ScriptedGenerator

    item = TestItem("q1", "May I remove the notices?", ("seed#1",), "No.", key_facts=("not|no",))
    declined = Answer(item.question, "The document does not say.", True, [], [], {}, "nothing close")
    scores = score(Result(item, [], declined), Answerer(seed_index, ScriptedGenerator("")))
    assert scores["key_facts"] is False
