"""Each stage of the answer pipeline alone, on hand-made states, and the verifier's meaning checks."""


import pytest

from qa import grounding, pipeline
from qa.answer import Answerer, AnswerSettings
from qa.policy import DEFAULT_POLICY, Policy
from qa.verify import Context, negations, polarity_conflict, verify

from .conftest import REPO, ScriptedGenerator

FAKE = AnswerSettings(min_dense=0.05)


# --------------------------------------------------------------------------- split_claims


def test_split_claims_holds_back_the_sentence_still_being_written():
    assert pipeline.split_claims("France and Mexico led it [¶11]. They", final=False) == [
        "France and Mexico led it [¶11]."]
    assert pipeline.split_claims("France and Mexico led it [¶11].", final=False) == []


def test_split_claims_marks_a_sentence_cut_by_the_token_limit():
    assert pipeline.split_claims("France and Mexico led the", final=True) == ["France and Mexico led the…"]


def test_each_list_line_is_a_claim_complete_at_its_line_break():
    assert pipeline.split_claims("- Australia and Ghana\n- France and", final=False) == ["- Australia and Ghana"]


# --------------------------------------------------------------------------- decide_answerable


def test_decide_answerable_declines_a_question_naming_what_the_document_never_mentions(seed_index):
    a = Answerer(seed_index, ScriptedGenerator("unused"), FAKE)
    state = pipeline.State("What did Brazil say about the veto?")
    pipeline.retrieve(a, state)
    assert "brazil" in pipeline.decide_answerable(a, state)
    state = pipeline.State("Which countries led the initiative on veto restraint?")
    pipeline.retrieve(a, state)
    assert pipeline.decide_answerable(a, state) == ""


# --------------------------------------------------------------------------- attach_evidence


def test_attach_evidence_moves_a_wrong_citation_to_the_supporting_passage(seed_index):
    a = Answerer(seed_index, ScriptedGenerator("unused"), FAKE)
    state = pipeline.State("Which countries led the initiative on veto restraint?")
    pipeline.retrieve(a, state)
    pipeline.select_evidence(a, state)
    claim = pipeline.attach_evidence(a, state, "France and Mexico led the initiative on veto restraint [¶10].")
    assert [p.label for p in claim.backing] == ["¶11"]
    assert pipeline.attach_evidence(a, state, "Spain and Italy led the initiative on veto restraint [¶11].") is None
    assert state.trace[-1].decision == "dropped a sentence" and "italy" in state.trace[-1].detail


# --------------------------------------------------------------------------- verify


LICENCE = ("IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER "
           "LIABILITY. You must cure the violation within thirty (30) days of the notice. "
           "Mere interaction with a user through a computer network, with no transfer of a copy, is not conveying.")


@pytest.mark.parametrize("claim,supported", [
    ("The authors shall not be liable for any claim.", True),
    ("The authors shall be liable for any claim.", False),  # polarity turned
    ("You must cure the violation within 30 days of the notice.", True),
    ("You must cure the violation within thirty days of the notice.", True),  # words meet digits
    ("You must cure the violation within sixty days of the notice.", False),  # a number the passage lacks
    ("Interaction through a computer network with no transfer of a copy is not conveying.", True),
    ("Interaction through a computer network with no transfer of a copy is conveying.", False),
])
def test_verify_reads_negation_and_numbers(claim, supported):
    assert verify(claim, LICENCE).supported is supported


def test_numbers_in_digits_meet_the_same_number_in_words():
    passage = "Seventy-three Member States took the floor."
    assert verify("73 Member States took the floor.", passage).supported
    assert not verify("74 Member States took the floor.", passage).supported


def test_a_name_opening_a_sentence_is_checked_like_any_other():
    passage = "Australia and Ghana led the initiative."
    names = grounding.names_of([passage, "France and Mexico led the other one."])
    assert verify("Ghana led the initiative.", passage, context=Context(names=names)).supported
    assert not verify("Mexico led the initiative.", passage, context=Context(names=names)).supported
    # A capitalised first word that is no name of the documents is just a word.
    assert verify("Based on the passage, Ghana led the initiative.", passage, context=Context(names=names)).supported


def test_a_name_is_not_met_by_a_word_that_only_shares_its_stem():
    passage = "Each Contributor grants a licence, in addition to the rights of the holder."
    assert not verify("Each Additional Contributor grants a licence.", passage).supported
    assert verify("All Contributors grant a licence.", passage).supported  # the plural is the same name


def test_negations_are_counted_per_clause():
    assert negations("you may not, without permission, copy it") == 2
    assert polarity_conflict("You may copy it.", "You may not copy it.") == "You may copy it."
    # A negation in another clause of the passage is not this claim's.
    assert polarity_conflict("Licences survive termination.",
                             "Licences granted by You shall survive termination, but no new licence is granted.") == ""


def test_a_hyphenated_negation_is_matched_to_the_clause_that_holds_it():
    passage = "Each Contributor grants You a perpetual, worldwide, non-exclusive, no-charge, royalty-free licence."
    assert polarity_conflict(passage.replace("no-charge", "some-charge"), passage)
    assert not polarity_conflict(passage, passage)


def test_a_claim_is_matched_to_the_passage_sentence_by_sentence():
    passage = "Suppose deflate() has no more output, but filled the buffer! avail_out is zero, and we can tell."
    assert polarity_conflict(passage.replace("has no more", "has some more"), passage)


def test_a_paraphrase_may_move_the_negation_to_another_clause():
    passage = "Subsequent calls of deflate() would return Z_STREAM_ERROR if the flush parameter is not Z_FINISH."
    claim = "If you call deflate() again without Z_FINISH, it returns Z_STREAM_ERROR."
    assert not polarity_conflict(claim, passage)
    assert polarity_conflict("If you call deflate() again with Z_FINISH, it returns Z_STREAM_ERROR.", passage)


def test_a_claim_restating_what_the_negation_does_not_turn_is_no_conflict():
    passage = ("No covered work shall be deemed part of an effective technological measure under "
               "article 11 of the WIPO copyright treaty adopted on 20 December 1996.")
    assert not polarity_conflict("The treaty named there is the WIPO copyright treaty adopted on 20 December 1996.",
                                 passage)
    assert polarity_conflict("Covered work shall be deemed part of an effective technological measure.", passage)
    # A negation that ends its clause turns the words before it.
    assert polarity_conflict("Tar determines whether the archive can be seeked or.",
                             "Tar determines whether the archive can be seeked or not.")


def test_a_negation_word_inside_a_name_turns_nothing():
    passage = "If None Of The Above wins the election then the election procedure is repeated, many times if necessary."
    assert not polarity_conflict("The election procedure is repeated, many times if necessary.", passage)
    assert negations("If None Of The Above wins") == 0 and negations("None of the above won") == 1
    # A title-cased line and capitals for emphasis still say "no".
    for passage in ("In No Event Shall The Authors Be Liable For Any Claim.", "IN NO EVENT SHALL THE AUTHORS BE LIABLE."):
        assert polarity_conflict("The authors shall be liable for any claim.", passage)


def test_except_that_states_the_exception_it_introduces():
    passage = ("A person may hold several posts, except that the Project Leader, the Project Secretary and "
               "the Chair of the Technical Committee must be distinct.")
    claim = "The Project Leader, Project Secretary and the Chair of the Technical Committee must be distinct."
    assert not polarity_conflict(claim, passage)
    # A negation inside the exception still counts.
    passage = "Developers may vote on any resolution, except that they may not vote on their own expulsion."
    assert polarity_conflict("Developers may vote on their own expulsion.", passage)


def test_a_label_written_as_text_is_a_citation_not_a_number():
    labels = ["zlib Usage Example ¶4", "3.3"]
    assert pipeline._label_mentions_as_markers("In zlib Usage Example ¶4, you set the fields.", labels) == (
        "You set the fields. [zlib Usage Example ¶4]")
    assert pipeline._label_mentions_as_markers("The passage zlib usage example ¶4 says so.", labels) == (
        "The passage [zlib Usage Example ¶4] says so.")
    # A clause number can be content: "Section 3.3 allows ..." keeps it.
    assert pipeline._label_mentions_as_markers("Section 3.3 allows it.", labels) == "Section 3.3 allows it."


def test_the_sentence_after_the_best_one_is_its_context_not_a_drift(seed_index):
    from qa.answer import Passage

    a = Answerer(seed_index, ScriptedGenerator("unused"), FAKE)
    state = pipeline.State("Why check feof()?")
    p = Passage("doc#4", "¶4", "doc", "", "We use feof() here. ... The reason is that ...", 1.0, 1.0, 1.0, 1)
    # (score, passage, sentence index, sentence): the third row is the sentence after the best.
    state.ranked = [(1.0, p, 2, "We use feof() here."), (0.9, p, 5, "Other."), (0.6, p, 3, "The reason is that ..."),
                    (0.6, p, 7, "Far away.")]
    release = pipeline.Release(a, state)
    claim = lambda n: pipeline.Claim("x", [p], n, 0.5)
    assert not release.drifted(claim(2)) and release.drifted(claim(3))


@pytest.mark.parametrize("question,yes_no", [
    ("Can I sublicense GPL code to my customers?", True),
    ("We ship a compiled build. Do we have to hand out the source too?", True),
    ("If I paste MPL code into a new file, does that file count as a Modification?", True),
    ("And if they add a restriction, am I stuck with it?", True),
    ("Can I sell copies, and how much can I charge for the source?", False),  # asks how much too
    ("Which countries led the initiative?", False),
    ("When do my patent licenses end?", False),
])
def test_yes_no_questions_are_known_by_their_last_sentence(question, yes_no):
    assert grounding.asks_yes_no(question) is yes_no


def test_a_yes_no_question_with_only_a_restated_draft_gets_the_deciding_sentence(seed_index):
    """The model's "No, you cannot ..." is a coin toss and restates the question: the closest
    sentence of the passages answers instead, at the lower yes/no bar."""
    question = "Did the participants stress that prevention is a primary responsibility of States?"
    draft = "No, the participants did not stress that prevention is a primary responsibility of States."
    strict = Answerer(seed_index, ScriptedGenerator(draft), Policy(min_dense=0.05, min_yes_no_fallback=5.0))
    assert strict.ask(question).abstained  # (no sentence could reach that bar)
    answer = Answerer(seed_index, ScriptedGenerator(draft), Policy(min_dense=0.05)).ask(question)
    assert not answer.abstained and answer.quoted
    assert "prevent" in answer.text.lower() and answer.citations
    assert not answer.text.lower().startswith("no")  # the model's coin toss is not shown


def test_who_questions_accept_roles_and_when_questions_accept_conditions():
    assert grounding.gives_expected_answer("The Secretary-General spoke first.", "Who spoke first?")
    assert grounding.gives_expected_answer("They end if You initiate patent litigation.", "When do my patent licenses end?")
    assert not grounding.gives_expected_answer("Patent licenses are granted.", "When do my patent licenses end?")
    # A past event happened at a time: a condition does not say when it was published.
    assert not grounding.gives_expected_answer("If a copy was not distributed, contact us.", "When was version 2.0 published?")
    assert grounding.gives_expected_answer("Version 2.0 was published in 2012.", "When was version 2.0 published?")


# --------------------------------------------------------------------------- policy and lexicon


def test_every_threshold_lives_in_the_policy():
    fields = Policy.__dataclass_fields__
    assert {"k", "min_dense", "min_support", "on_target", "drift_margin", "max_new_tokens"} <= set(fields)
    # The store's default fusion weight is the policy's, not a second number.
    import inspect

    from qa.store import ParagraphIndex
    assert inspect.signature(ParagraphIndex.search).parameters["dense_weight"].default == DEFAULT_POLICY.dense_weight


def test_language_data_is_data():
    from qa import lexicon

    assert "what" in lexicon.words("stopwords") and lexicon.numbers("ordinals")["twentieth"] == 20
    assert grounding.number_values("the twelfth day") == {"12"}


# --------------------------------------------------------------------------- polarity check (issue floor)


def test_falsified_sentences_are_rejected_on_every_shipped_document():
    from qa.polarity_check import check_documents

    documents = [REPO / "corpus" / "r2p-2017-dialogue-summary.txt"] + sorted((REPO / "testsets" / "docs").iterdir())
    for rates in check_documents(documents, per_document=120):
        assert rates.true_kept >= 0.95 * rates.true_total, rates.document
        assert rates.falsified_rejected >= 0.95, (rates.document, rates.missed[:3])


# --------------------------------------------------------------------------- rules found on the blind sets


def _licence_index(tmp_path, fake_embedder):
    from qa.documents import load_documents
    from qa.store import build_index

    doc = tmp_path / "tpl-1.0.txt"
    doc.write_text("Tiny Public License Version 1.0\n\n1. Terms\n\n"
                   "1.1. You may charge a fee for support and warranty of the software.\n\n"
                   "1.2. Your rights end 30 days after you are notified of a breach and do not cure it.\n\n"
                   "1.3. The Foundation is the steward of this license and may publish new versions.\n",
                   encoding="utf-8")
    return build_index(load_documents([doc]), fake_embedder, tmp_path / "ix")


def test_the_documents_own_name_need_not_be_in_the_clause_that_answers(tmp_path, fake_embedder):
    # "TPL" names the whole document; the answering clause never repeats it.
    a = Answerer(_licence_index(tmp_path, fake_embedder),
                 ScriptedGenerator("The Foundation is the steward of the TPL [1.3]."), FAKE)
    answer = a.ask("Who is the steward of the TPL?")
    assert not answer.abstained and "[1.3]" in answer.text


@pytest.mark.parametrize("draft,claim", [
    ("The passage states that the MPL is maintained by Mozilla.", "The MPL is maintained by Mozilla."),
    ("According to the document, gzip keeps the original name.", "Gzip keeps the original name."),
    ("Based on the passage, there are 73 Member States.", "There are 73 Member States."),
    ("The license says nothing about fees.", "The license says nothing about fees."),  # "the license": no "that"
])
def test_preambles_are_cut(draft, claim):
    assert pipeline._without_preamble(draft) == claim


def test_a_preamble_about_the_passage_is_not_part_of_the_claim(tmp_path, fake_embedder):
    a = Answerer(_licence_index(tmp_path, fake_embedder),
                 ScriptedGenerator("The passage states that the Foundation is the steward of this license."), FAKE)
    answer = a.ask("Who is the steward of this license?")
    assert answer.text.startswith("The Foundation is the steward of this license") and "passage" not in answer.text
    verdicts = [step for step in answer.trace if step["stage"] == "verify"]
    assert [step["decision"] for step in verdicts] == ["supported"]  # the model's claim itself passed


def test_a_yes_or_no_that_only_restates_the_question_is_not_a_claim(tmp_path, fake_embedder):
    # The small model's "No, you may not ..." is wrong as often as right: the clause answers.
    index = _licence_index(tmp_path, fake_embedder)
    question = "May I charge a fee for support and warranty of the software?"
    wrong = Answerer(index, ScriptedGenerator("No, you may not charge a fee for support and warranty of the software."),
                     AnswerSettings(min_dense=0.05, min_fallback=0.0))
    answer = wrong.ask(question)
    assert not answer.text.startswith("No") and answer.text.startswith("You may charge a fee")
    assert "quoted the passage" in answer.reason


def test_the_fallback_quote_gives_the_kind_of_answer_asked_for(tmp_path, fake_embedder):
    # The draft gives no number; the quoted sentence must be one that has it.
    a = Answerer(_licence_index(tmp_path, fake_embedder),
                 ScriptedGenerator("Your rights end if you do not cure a breach."), AnswerSettings(min_dense=0.05, min_fallback=0.0))
    answer = a.ask("How long do my rights last after I am notified of a breach?")
    assert "30 days" in answer.text


@pytest.mark.parametrize("question", [
    "What's the maximum number of mirrors a list can hold?", "In which apt version was Signed-By added?",
    "Which SOCKS port does it connect to by default?", "How big should my buffers be?",
    "Is there a minimum fee?", "What size is a block?"])
def test_questions_about_a_limit_a_version_or_a_port_want_a_number(question):
    assert grounding.expected_answer(question) == "number"
    assert not grounding.gives_expected_answer("The list can hold many different mirrors.", question)
    assert grounding.gives_expected_answer("It holds at most 16 entries since version 1.1.", question)


@pytest.mark.parametrize("question,kind", [
    ("When do my patent licenses end?", "number"), ("when was it published?", "number"),
    ("When I open a terminal from Jupyter, pyenv is stuck on one version. Why?", None),
    ("When a file is deleted, what happens to its pattern?", None)])
def test_a_when_clause_that_sets_the_scene_asks_no_time(question, kind):
    assert grounding.expected_answer(question) == kind


def test_a_draft_that_leaves_out_its_passages_negation_is_answered_with_the_passage(tmp_path, fake_embedder):
    # "mount it" is true of "mount (but not reformat) it", and drops the point: quote it.
    from qa.documents import load_documents
    from qa.store import build_index

    doc = tmp_path / "install-notes.txt"
    doc.write_text("Reinstalling\n\nIf your home directory is on its own partition, tell the installer to "
                   "mount (but not reformat) that partition when reinstalling. Back up your data first.\n",
                   encoding="utf-8")
    index = build_index(load_documents([doc]), fake_embedder, tmp_path / "ix")
    question = "How do I keep my home partition when I reinstall?"
    answer = Answerer(index, ScriptedGenerator("Tell the installer to mount that partition when reinstalling."),
                      FAKE).ask(question)
    assert "but not reformat" in answer.text and not answer.abstained
    assert any(step["decision"] == "quoted the sentence whose negation the draft left out" for step in answer.trace)
    # A draft that turns the negation itself is still no answer.
    turned = Answerer(index, ScriptedGenerator("Tell the installer to reformat that partition when reinstalling."),
                      FAKE).ask(question)
    assert turned.abstained or "but not reformat" in turned.text


def test_a_quoted_list_item_opens_with_the_line_that_opens_its_list(tmp_path, fake_embedder):
    from qa.documents import load_documents
    from qa.store import build_index

    doc = tmp_path / "tpl-2.0.txt"
    doc.write_text("Tiny Public License Version 2.0\n\n2. Grants\n\n"
                   "2.1. Each Contributor grants you a licence to copy the software.\n\n"
                   "2.2. No patent licence is granted by a Contributor:\n\n"
                   "(a) for any code that the Contributor has removed from the software; or\n\n"
                   "(b) for infringements caused by your own changes to the software.\n",
                   encoding="utf-8")
    index = build_index(load_documents([doc]), fake_embedder, tmp_path / "ix")
    question = "Is code the Contributor has removed from the software still under a patent licence?"
    answer = Answerer(index, ScriptedGenerator("The Contributor removed code from the software."),
                      AnswerSettings(min_dense=0.05, min_fallback=0.0)).ask(question)
    assert "No patent licence is granted by a Contributor: for any code" in answer.text, answer.text
    assert {c.label for c in answer.citations} >= {"2.2", "2.2(a)"}
    # Item (b) finds the same line back over item (a), which runs on ("; or").
    a = Answerer(index, ScriptedGenerator(""), AnswerSettings(min_dense=0.05))
    item_b = next(p for p in index.paragraphs if p.label == "2.2(b)")
    from qa.answer import Passage
    passage = Passage(item_b.id, item_b.label, item_b.document, item_b.section, item_b.text, 1.0, 1.0, 0.0, 1)
    assert a.lead_in(passage).label == "2.2"


def test_a_draft_that_words_the_question_its_own_way_is_answered_with_the_sentence_it_restates(tmp_path, fake_embedder):
    # The reader's words ("installs software from several editions") are the document's, but
    # not this sentence's; all the draft adds ("a mixture called apt-pinning") is this
    # sentence's: it answers, in its own words.
    from qa.documents import load_documents
    from qa.store import build_index

    doc = tmp_path / "releases.md"
    pinning = ("Systems whose sources list several releases at once run a mixture of distributions, "
               "which is frequently called apt-pinning.")
    doc.write_text(f"# Mixing releases\n\n{pinning}\n\n# Upgrading\n\nRead the release notes before you "
                   "install software of new editions on a computer.\n", encoding="utf-8")
    a = Answerer(build_index(load_documents([doc]), fake_embedder, tmp_path / "ix"), ScriptedGenerator("unused"), FAKE)
    state = pipeline.State("What is it called when a computer installs software from several editions at once?")
    pipeline.retrieve(a, state)
    mixing = next(p for p in state.passages if "apt-pinning" in p.text)
    upgrading = next(p for p in state.passages if p is not mixing)
    state.ranked = [(0.9, mixing, 0, pinning), (0.8, upgrading, 0, upgrading.text)]  # as a real ranker put them
    release = pipeline.Release(a, state)
    draft = "When a computer installs software from several editions at once, it runs a mixture called apt-pinning."
    assert pipeline.attach_evidence(a, state, draft) is None  # most of its words are the reader's
    claim = release._restated_sentence(draft)
    assert claim is not None and claim.text.startswith("Systems whose sources list") and claim.backing == [mixing]
    # What the draft adds must be the sentence's: another term, or a turned negation, is no answer.
    for wrong in ("When a computer installs software from several editions at once, it runs a mixture called dual-booting.",
                  "When a computer installs software from several editions at once, it never runs a mixture called apt-pinning.",
                  "It is apt-pinning."):  # one word of its own says too little to match a sentence by
        assert release._restated_sentence(wrong) is None, wrong
    # Nor is a sentence that shares no word with the question its answer, whatever the draft
    # borrowed from it.
    other = pipeline.State("Who looks after the mirrors?")
    other.passages, other.ranked = state.passages, state.ranked
    assert pipeline.Release(a, other)._restated_sentence("They run a mixture of distributions called apt-pinning.") is None
    assert release._restated_sentence("They run a mixture of distributions called apt-pinning.") is not None
