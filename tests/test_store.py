"""Index build, save/load, atomic swap, incremental rebuild and mismatch errors (fake embedder)."""

import json

import numpy as np
import pytest

from qa.documents import load_documents
from qa.errors import IndexStoreError, QuestionError
from qa.store import FORMAT_VERSION, build_index, load_index

from .conftest import DOC, SEED, FakeEmbedder


def test_save_and_load_round_trip(tmp_path, fake_embedder):
    built = build_index(load_documents([SEED]), fake_embedder, tmp_path / "ix")
    loaded = load_index(tmp_path / "ix", fake_embedder)
    assert [p.id for p in loaded.paragraphs] == [p.id for p in built.paragraphs]
    assert np.allclose(loaded.vectors, built.vectors)
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedder"] == {"name": fake_embedder.name, "sha256": fake_embedder.sha256}
    assert manifest["count"] == len(built) and manifest["dimension"] == fake_embedder.dimension
    assert len(manifest["sources"][0]["sha256"]) == 64


def test_hybrid_search_finds_the_veto_paragraph(seed_index):
    hits = seed_index.search("veto restraint France Mexico", k=3)
    assert hits[0].paragraph.id == DOC + "11"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_lexical_mode_and_unknown_words(seed_index):
    assert seed_index.search("Ombudspersons", k=1, mode="lexical")[0].paragraph.id == DOC + "6"
    hits = seed_index.search("zzzz qqqq", k=2, mode="lexical")  # no known word: still answers
    assert len(hits) == 2 and all(h.lexical == 0 for h in hits)


def test_question_words_are_no_lexical_evidence(seed_index):
    # The seed's ¶10 is its only paragraph with "what" ("in the light of what they perceive"):
    # no "What ...?" question may reach it through that word.
    assert seed_index.lexical_scores("What was it? Who did it, and why were they there?").max() == 0
    assert seed_index.search("What was the theme of the dialogue?", k=1, mode="lexical")[0].paragraph.id != DOC + "10"


@pytest.mark.parametrize("query", ["", "   ", "x" * 10_000])
def test_bad_queries(seed_index, query):
    with pytest.raises(QuestionError):
        seed_index.search(query)


def test_interrupted_build_leaves_previous_index(tmp_path, fake_embedder, monkeypatch):
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    before = (target / "paragraphs.jsonl").read_text()
    other = tmp_path / "other.md"
    other.write_text("# Other\n\nA completely different document about rivers and mountains.\n")

    import faiss

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(load_documents([SEED, other]), fake_embedder, target)
    assert (target / "paragraphs.jsonl").read_text() == before
    assert load_index(target, fake_embedder) is not None
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name]  # no debris


def test_swap_cut_between_renames_is_recovered(tmp_path, fake_embedder):
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    target.rename(tmp_path / ".ix.old")  # the state after the first rename of a swap
    assert len(load_index(target, fake_embedder)) > 0


def test_rebuild_reembeds_only_new_paragraphs(tmp_path):
    embedder = FakeEmbedder()
    target = tmp_path / "ix"
    first = build_index(load_documents([SEED]), embedder, target)
    assert first.manifest["embedded"] == len(first)
    other = tmp_path / "extra.md"
    other.write_text("# Extra\n\nOne more paragraph about something else entirely, long enough.\n")
    embedder.texts_embedded = 0
    second = build_index(load_documents([SEED, other]), embedder, target)
    assert embedder.texts_embedded == 1
    assert second.manifest["reused"] == len(first)
    assert np.allclose(second.vectors[: len(first)], first.vectors)


def test_missing_file_names_the_fix(tmp_path, fake_embedder):
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    (target / "vectors.npy").unlink()
    with pytest.raises(IndexStoreError, match=r"missing vectors.npy.*qa index"):
        load_index(target, fake_embedder)


def test_no_index_at_all(tmp_path, fake_embedder):
    with pytest.raises(IndexStoreError, match="qa index"):
        load_index(tmp_path / "nothing", fake_embedder)


def test_other_format_version(tmp_path, fake_embedder):
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["format_version"] = 99
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError, match="format version 99"):
        load_index(target, fake_embedder)


def test_other_embedder(tmp_path, fake_embedder):
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)

    class Other(FakeEmbedder):
        name, sha256 = "other-model", "0" * 64

    with pytest.raises(IndexStoreError, match="built with embedder 'fake-bag-of-words'"):
        load_index(target, Other())


def test_corrupt_files(tmp_path, fake_embedder):
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    (target / "paragraphs.jsonl").write_text("{not json\n")
    with pytest.raises(IndexStoreError, match="corrupt"):
        load_index(target, fake_embedder)
    (target / "manifest.json").write_text("garbage")
    with pytest.raises(IndexStoreError, match="corrupt"):
        load_index(target, fake_embedder)


def test_inconsistent_counts(tmp_path, fake_embedder):
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    vectors = np.load(target / "vectors.npy")
    np.save(target / "vectors.npy", vectors[:3])
    manifest = json.loads((target / "manifest.json").read_text())
    del manifest["files"], manifest["sizes"]  # as an index without checksums: the counts are what catch it
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError, match=r"is inconsistent \("):  # not just the tmp folder's name
        load_index(target, fake_embedder)


def test_embedder_remembers_recent_questions():
    # Retrieval and sentence ranking embed the same question: the model should run once.
    import numpy as np

    from qa.models import Embedder

    class CountingModel:
        calls = 0

        def encode(self, texts, **_):
            CountingModel.calls += 1
            return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    embedder = Embedder.__new__(Embedder)  # no weights needed for the cache logic
    embedder.model, embedder.batch_size, embedder.dimension, embedder._recent = CountingModel(), 32, 2, {}
    first = embedder.encode(["Who led it?"])
    again = embedder.encode(["Who led it?"])
    both = embedder.encode(["Who led it?", "And then?"])
    assert CountingModel.calls == 2  # the repeated question was not embedded again
    assert np.array_equal(first, again) and both.shape == (2, 2) and both[1][0] == len("And then?")
    embedder.encode(["a", "b", "c"])  # batches (documents) bypass the cache
    assert CountingModel.calls == 3 and "a" not in embedder._recent


def test_a_document_without_a_file_is_indexed_without_a_copy(tmp_path, fake_embedder):
    # The benchmark indexes paragraphs made in memory: there is no source file to keep.
    from qa.documents import Document, Paragraph

    paragraphs = [Paragraph("synthetic#1", "synthetic.txt", "¶1", 1, "", "Rivers run to the sea through valleys.")]
    index = build_index([Document(tmp_path / "nowhere.txt", "synthetic", "0" * 64, paragraphs)], fake_embedder, tmp_path / "ix")
    assert "copy" not in index.manifest["sources"][0]
    assert len(load_index(tmp_path / "ix", fake_embedder)) == 1


def test_an_older_format_is_rebuilt_automatically_with_a_message(tmp_path, fake_embedder, capsys):
    from qa.service import Service
    from qa.store import OutdatedIndexError

    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION - 1  # an index from before paragraphs had pages
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OutdatedIndexError, match="rebuild it"):
        load_index(target, fake_embedder)
    service = Service(index_path=target, embedder=fake_embedder)
    assert [p.id for p in service.index.paragraphs][-1] == DOC + "13"
    assert "rebuilding it now" in capsys.readouterr().err
    assert json.loads((target / "manifest.json").read_text())["format_version"] == FORMAT_VERSION


def test_paragraph_pages_are_stored(tmp_path, fake_embedder):
    from qa.documents import Document, Paragraph

    paragraph = Paragraph("d#p-3-2", "d.pdf", "p. 3 ¶2", None, "", "Text on the third page of it.", page=3)
    document = Document(tmp_path / "d.pdf", "d", "0" * 64, [paragraph])
    build_index([document], fake_embedder, tmp_path / "ix")
    assert load_index(tmp_path / "ix", fake_embedder).paragraphs[0].page == 3
