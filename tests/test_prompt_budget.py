"""The prompt's token budget (qa/budget.py): history goes first, then the least relevant
sentences, then the best one is cut; the generator never sees a prompt over the budget."""

import pytest

from qa import budget
from qa.answer import Answerer, AnswerSettings
from qa.documents import load_documents
from qa.errors import QuestionError
from qa.store import build_index

from .conftest import ScriptedGenerator

QUESTION = "Which countries led the initiative on veto restraint?"
REPLY = "France and Mexico led the initiative on veto restraint [¶11]."


class WordTokens(ScriptedGenerator):
    """A fake model whose tokens are words, with a context it refuses to overflow, as a real one
    would fail."""

    def __init__(self, reply, context):
        super().__init__(reply)
        self.context = context
        self.counted = 0

    def count_tokens(self, messages):
        self.counted += 1
        return sum(sum((len(word) + 3) // 4 for word in m["content"].split()) + 2 for m in messages)

    def stream(self, messages, max_new_tokens=120):
        assert self.count_tokens(messages) <= self.context, "context overflow"
        yield from super().stream(messages, max_new_tokens)


def _answerer(index, tokens, context=None, reply=REPLY):
    generator = WordTokens(reply, context or tokens)
    return Answerer(index, generator, AnswerSettings(min_dense=0.05, prompt_tokens=tokens)), generator


def _trace(answer):
    return [s for s in answer.trace if s["decision"] == "prompt trimmed to its token budget"]


def test_a_normal_prompt_is_not_trimmed(seed_index):
    a, generator = _answerer(seed_index, 2048)
    answer = a.ask(QUESTION)
    assert not answer.abstained and "France and Mexico" in answer.text
    assert not _trace(answer)
    assert len(generator.seen[0]) == 2  # system turn and question
    assert generator.count_tokens(generator.seen[0]) < 1000


def test_history_is_dropped_first_oldest_first(seed_index):
    history = [{"question": f"Earlier question {n}? " + "word " * 100, "answer": "An earlier answer."} for n in range(2)]
    a, generator = _answerer(seed_index, 2048)
    full = a.messages(QUESTION, a.retrieve_passages(QUESTION), history)
    needed = generator.count_tokens(full)
    a, generator = _answerer(seed_index, needed - 50)  # room for one earlier turn, not two
    answer = a.ask(QUESTION, history)
    sent = generator.seen[0]
    assert [m["content"].split("?")[0] for m in sent if m["role"] == "user"] == ["Earlier question 1", QUESTION[:-1]]
    assert sent[0] == full[0]  # the evidence is untouched while turns can go
    assert "1 earlier turn(s) left out" in _trace(answer)[0]["detail"]
    assert "France and Mexico" in answer.text


def test_then_the_least_relevant_sentences_go(seed_index):
    a, generator = _answerer(seed_index, 2048)
    passages = a.retrieve_passages(QUESTION)
    ranked = a.rank_sentences(QUESTION, passages)
    full = a.messages(QUESTION, passages, ranked=ranked)
    best = ranked[0][3]
    a, generator = _answerer(seed_index, generator.count_tokens(full) - 20)
    answer = a.ask(QUESTION)
    system = generator.seen[0][0]["content"]
    assert best in system  # the best sentence stays
    assert "less relevant sentence(s) left out" in _trace(answer)[0]["detail"]
    assert generator.count_tokens(generator.seen[0]) <= a.policy.prompt_tokens
    assert not answer.abstained  # the checks still read the whole passages


def test_a_two_megabyte_sentence_is_cut_to_fit(tmp_path, fake_embedder, monkeypatch):
    # One line, no space, no sentence end: one paragraph, one "sentence" of 2 MB (without the
    # indexing's character cap, which would cut it into 4,000-character paragraphs).
    monkeypatch.setattr("qa.documents.MAX_PARAGRAPH_CHARS", 10**9)
    path = tmp_path / "huge.txt"
    path.write_text("veto-restraint-initiative-France-Mexico-" * 50_000 + "\n")
    index = build_index(load_documents([path]), fake_embedder, tmp_path / "index")
    assert len(index.paragraphs) == 1 and len(index.paragraphs[0].text) >= 2_000_000
    a, generator = _answerer(index, 400, reply="France and Mexico led the veto restraint initiative.")
    answer = a.ask(QUESTION)
    sent = generator.seen[0]
    assert generator.count_tokens(sent) <= 400
    assert "…" in sent[0]["content"] and len(sent[0]["content"]) < 400 * budget.MAX_CHARS_PER_TOKEN
    assert generator.counted < 60  # found by halving, not word by word
    assert _trace(answer)


def test_a_long_line_of_words_keeps_the_best_sentences(tmp_path, fake_embedder):
    # With spaces the line is cut into 300-word parts: many long sentences, trimmed to fit.
    path = tmp_path / "long.txt"
    path.write_text("the veto restraint initiative was discussed at length by many delegations " * 25_000 + "\n")
    index = build_index(load_documents([path]), fake_embedder, tmp_path / "index")
    a, generator = _answerer(index, 400, reply="The veto restraint initiative was discussed.")
    answer = a.ask(QUESTION)
    assert generator.count_tokens(generator.seen[0]) <= 400
    assert "left out" in _trace(answer)[0]["detail"]


def test_one_giant_word_is_cut_too():
    rows = [(1.0, None, 0, "x" * 2_000_000)]
    built = []

    def build(turns, shown):
        built.append(shown)
        return [{"role": "system", "content": " ".join(r[3] for r in shown)}, {"role": "user", "content": "q"}]

    prompt = budget.fit(build, [], rows, budget.estimate_tokens, 500)
    assert budget.estimate_tokens(prompt) <= 500 and prompt.trimmed == "an evidence sentence cut short"
    assert max(len(shown[0][3]) for shown in built) <= 500 * budget.MAX_CHARS_PER_TOKEN + 1


def test_a_question_too_long_for_the_budget_is_refused_in_one_line(seed_index):
    a, _ = _answerer(seed_index, 60)
    with pytest.raises(QuestionError, match="too long for the model's prompt") as caught:
        a.ask(QUESTION + " " + "please " * 80)
    assert "\n" not in str(caught.value)


def test_without_a_tokenizer_characters_are_the_estimate(seed_index):
    a = Answerer(seed_index, ScriptedGenerator(REPLY), AnswerSettings(min_dense=0.05, prompt_tokens=150))
    history = [{"question": "An earlier question? " + "word " * 300, "answer": "An answer."}]
    answer = a.ask(QUESTION, history)
    assert budget.estimate_tokens(a.generator.seen[0]) <= 150
    assert "earlier turn(s) left out" in _trace(answer)[0]["detail"]


def test_the_default_budget_leaves_room_in_a_server_slot():
    from qa.llm_server import CONTEXT_PER_SLOT

    policy = AnswerSettings()
    assert policy.prompt_tokens + policy.max_new_tokens < CONTEXT_PER_SLOT
