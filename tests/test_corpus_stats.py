"""The answer side's collection statistics: computed at build, stored with the index, read
back equal; an answerer over a loaded index starts without reading every paragraph."""

from collections.abc import Sequence

import pytest

from qa import corpus_stats, grounding, store
from qa.answer import Answerer
from qa.documents import load_documents
from qa.store import build_index, load_index

from .conftest import REPO, SEED, ScriptedGenerator

SHIPPED = [SEED, REPO / "testsets" / "docs" / "mpl-2.0.txt"]


@pytest.fixture
def built_and_loaded(tmp_path, fake_embedder):
    built = build_index(load_documents(SHIPPED), fake_embedder, tmp_path / "ix")
    return built, load_index(tmp_path / "ix", fake_embedder)


def test_statistics_read_back_equal_to_those_computed_from_the_paragraphs(built_and_loaded):
    built, loaded = built_and_loaded
    fresh = corpus_stats.compute(list(loaded.paragraphs), loaded.documents)
    for stats in (built.statistics, loaded.statistics):
        assert stats.vocabulary == fresh.vocabulary and stats.words == fresh.words
        assert stats.idf == fresh.idf and stats.idf.typical == fresh.idf.typical
        assert stats.names == fresh.names and stats.acronyms == fresh.acronyms
        assert stats.document_names == fresh.document_names and stats.labels == fresh.labels
    assert "mozilla public license" in loaded.statistics.text  # a name the licence writes
    assert "public mozilla" not in loaded.statistics.text
    assert "responsibility-to protect" in loaded.statistics.text  # hyphens and spaces alike


def test_the_flattened_text_is_the_joined_text_flattened():
    texts = ["Ends with a hyphen-", "  starts with spaces", "", "   ", "A\n\nline  break", "Ünïcode Straße"]
    assert corpus_stats._flat(texts) == grounding.flatten("\n".join(texts)).strip(" ")
    flat = grounding.FlatText(corpus_stats._flat(texts).encode("utf-8"))  # as memory-mapped
    assert "hyphen starts" in flat and "line break" in flat and "ünïcode straße" in flat
    assert "hyphen ends" not in flat


class CountingParagraphs(Sequence):
    def __init__(self, paragraphs):
        self.paragraphs, self.read = paragraphs, 0

    def __len__(self):
        return len(self.paragraphs)

    def __getitem__(self, position):
        found = self.paragraphs[position]
        self.read += len(found) if isinstance(found, list) else 1
        return found


def test_an_answerer_over_a_loaded_index_starts_without_reading_the_paragraphs(tmp_path, fake_embedder):
    # More paragraphs than the answerer embeds ahead (Policy.pre_embed_limit).
    document = tmp_path / "many.md"
    document.write_text("\n\n".join(f"Rule {n}: the {n}th gate opens at dawn for the Keeper of Gate {n}."
                                    for n in range(1, 701)))
    build_index(load_documents([document]), fake_embedder, tmp_path / "ix")
    index = load_index(tmp_path / "ix", fake_embedder)
    index.paragraphs = counting = CountingParagraphs(index.paragraphs)
    answerer = Answerer(index, ScriptedGenerator("The gate opens at dawn [¶5]."))
    assert counting.read == 0
    assert answerer.referenced("What does paragraph 5 say?")[0].text.startswith("Rule 5:")
    assert counting.read <= 3  # the labelled paragraph, found through the stored labels


def test_a_paragraph_is_found_by_id_without_reading_the_others(built_and_loaded):
    _, loaded = built_and_loaded
    wanted = loaded.paragraphs[40]
    loaded.paragraphs = counting = CountingParagraphs(loaded.paragraphs)
    assert loaded.row_of(wanted.id) == 40 and loaded.by_id[wanted.id] == wanted
    assert loaded.row_of("no-such-document#1") is None and "no-such-document#1" not in loaded.by_id
    assert loaded.by_id.get(wanted.id) == wanted
    assert counting.read <= 5  # the wanted one, once per look-up (each confirms its id), of 74


def test_ids_sharing_a_hash_are_told_apart_by_reading_them(built_and_loaded, monkeypatch):
    built, _ = built_and_loaded
    monkeypatch.setattr(store, "_id_hash", lambda paragraph_id: 7)  # every id collides
    built._ids = None  # the table is made again, with the colliding hash
    for row in (0, 17, len(built.paragraphs) - 1):
        assert built.row_of(built.paragraphs[row].id) == row
    assert built.row_of("no-such-document#1") is None


def test_answers_over_a_loaded_index_are_those_over_the_built_one(built_and_loaded):
    built, loaded = built_and_loaded
    questions = ["Who led the panel discussions?", "What does paragraph 11 say?", "What does section 2.3 say?",
                 "What did the UNDP say?", "Does the MPL grant a patent license?", "What did Brazil say?"]
    for question in questions:
        answers = [Answerer(index, ScriptedGenerator(lambda m: "It is granted [¶2].")).ask(question)
                   for index in (built, loaded)]
        assert answers[0].text == answers[1].text and answers[0].abstained == answers[1].abstained
        assert answers[0].reason == answers[1].reason
        assert [c.id for c in answers[0].citations] == [c.id for c in answers[1].citations]


def test_the_overview_reads_each_documents_head_only_and_counts_every_word(built_and_loaded):
    from qa.documents import read_text
    from qa.overview import HEAD_PARAGRAPHS, describe, describe_documents

    built, loaded = built_and_loaded
    loaded.paragraphs = counting = CountingParagraphs(loaded.paragraphs)
    summaries = describe_documents(loaded)
    assert counting.read <= 2 * HEAD_PARAGRAPHS < len(loaded.paragraphs)
    for summary in summaries:  # the same as described from all of the document's paragraphs
        mine = [p for p in built.paragraphs if p.document == summary.name]
        assert (summary.paragraphs, summary.words) == (len(mine), sum(len(p.text.split()) for p in mine))
        path = next(source["path"] for source in loaded.manifest["sources"] if source["name"] == summary.name)
        assert summary.title == describe(summary.name, mine, read_text(path)).title != ""
