"""Large collections: the approximate FAISS index past APPROXIMATE_FROM, BM25 saved with the
index (loaded, not rebuilt; checksummed; counted like the vectors), the index type in the
manifest. Small data with a lowered threshold, so it runs in a second."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qa import store
from qa.documents import load_documents
from qa.errors import IndexStoreError
from qa.store import build_index, load_index

from .conftest import DOC, SEED

BM25_FILE = "bm25/data.csc.index.npy"


def _manifest(target):
    return json.loads((target / "manifest.json").read_text())


def test_small_collections_stay_exact(seed_index, tmp_path):
    import faiss

    assert seed_index.manifest["faiss"] == {"type": "flat"}
    assert isinstance(seed_index.faiss_index, faiss.IndexFlatIP)


@pytest.fixture
def approximate(tmp_path, fake_embedder, monkeypatch):
    monkeypatch.setattr(store, "APPROXIMATE_FROM", 10)  # the seed document has 19 paragraphs
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    return target


def test_past_the_threshold_the_index_is_ivf_and_says_so(approximate, fake_embedder):
    import faiss

    manifest = _manifest(approximate)
    assert manifest["faiss"] == store._faiss_spec(19) == {"type": "ivf", "lists": 16, "probes": 16}
    loaded = load_index(approximate, fake_embedder)
    assert isinstance(loaded.faiss_index, faiss.IndexIVFFlat)
    assert loaded.faiss_index.nprobe == 16
    # Its lists are memory-mapped from the file, not read into memory.
    assert isinstance(faiss.downcast_InvertedLists(loaded.faiss_index.invlists), faiss.OnDiskInvertedLists)
    assert loaded.search("veto restraint France Mexico", k=1)[0].paragraph.id == DOC + "11"


def test_a_probe_reads_only_the_nearest_lists(tmp_path, fake_embedder, monkeypatch):
    import faiss

    monkeypatch.setattr(store, "APPROXIMATE_FROM", 10)
    monkeypatch.setattr(store, "IVF_MIN_PROBES", 1)
    built = build_index(load_documents([SEED]), fake_embedder, tmp_path / "ix")
    assert built.manifest["faiss"] == {"type": "ivf", "lists": 16, "probes": 1}
    index = built.faiss_index
    index.nprobe = 1
    vectors = np.ascontiguousarray(built.vectors, dtype=np.float32)
    _, lists = index.quantizer.search(vectors, 1)
    _, found = index.search(vectors, 19)
    for row, nearest in enumerate(lists[:, 0]):
        # Each paragraph finds itself, and only paragraphs of its own list are candidates.
        members = {int(i) for i in found[row] if i >= 0}
        assert row in members
        assert members == set(np.flatnonzero(lists[:, 0] == nearest))
    assert isinstance(faiss.downcast_InvertedLists(index.invlists), faiss.ArrayInvertedLists)  # a fresh build: in memory


def test_approximate_and_exact_rank_alike(approximate, tmp_path, fake_embedder, monkeypatch):
    ivf = load_index(approximate, fake_embedder)
    monkeypatch.setattr(store, "APPROXIMATE_FROM", 10_000)
    exact = build_index(load_documents([SEED]), fake_embedder, tmp_path / "exact")
    for query in ("veto restraint", "early warning and assessment", "Secretary-General report", "Ombudspersons"):
        assert [h.paragraph.id for h in ivf.search(query, k=5)] == [h.paragraph.id for h in exact.search(query, k=5)]


def test_a_manifest_that_misnames_the_index_type_is_refused(approximate, fake_embedder):
    manifest = _manifest(approximate)
    manifest["faiss"] = {"type": "flat"}
    (approximate / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError, match="not the flat index the manifest says"):
        load_index(approximate, fake_embedder)


@pytest.mark.parametrize("faiss_entry", [None, {"type": "ivf"}, {"type": "ivf", "lists": 16, "probes": 0},
                                         {"type": "hnsw"}])
def test_the_index_type_is_part_of_the_schema(seed_index, tmp_path, fake_embedder, faiss_entry):
    target = tmp_path / "index"
    manifest = _manifest(target)
    manifest.pop("faiss") if faiss_entry is None else manifest.update(faiss=faiss_entry)
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError, match='"faiss"'):
        load_index(target, fake_embedder)


def test_bm25_is_loaded_not_rebuilt(seed_index, tmp_path, fake_embedder, monkeypatch):
    def rebuilt(*args, **kwargs):
        raise AssertionError("BM25 was rebuilt at load")

    monkeypatch.setattr(store, "build_bm25", rebuilt)
    loaded = load_index(tmp_path / "index", fake_embedder)
    assert np.allclose(loaded.lexical_scores("veto restraint"), seed_index.lexical_scores("veto restraint"))
    assert loaded.lexical_scores("veto restraint").argmax() == 11 + 5  # ¶11, after the cover letter's paragraphs
    assert isinstance(loaded.bm25.scores["data"], np.memmap)  # memory-mapped, not read into memory


def test_a_changed_bm25_file_is_refused_by_its_checksum(seed_index, tmp_path, fake_embedder):
    target = tmp_path / "index"
    data = np.load(target / BM25_FILE)
    np.save(target / BM25_FILE, data * 2)
    with pytest.raises(IndexStoreError, match="data.csc.index.npy is corrupt or was changed"):
        load_index(target, fake_embedder)


def test_a_missing_bm25_file_is_named(seed_index, tmp_path, fake_embedder):
    (tmp_path / "index" / "bm25" / "vocab.index.json").unlink()
    with pytest.raises(IndexStoreError, match="missing bm25/vocab.index.json"):
        load_index(tmp_path / "index", fake_embedder)


def test_bm25_out_of_step_with_the_vectors_is_refused(seed_index, tmp_path, fake_embedder):
    from qa.documents import Document

    # BM25 of another build (fewer paragraphs) put in place, checksums updated to match: the
    # counts still give it away.
    target = tmp_path / "index"
    document = load_documents([SEED])[0]
    other = tmp_path / "other"
    build_index([Document(document.path, document.doc_id, document.sha256, document.paragraphs[:5])], fake_embedder, other)
    shutil.rmtree(target / "bm25")
    shutil.copytree(other / "bm25", target / "bm25")
    manifest = _manifest(target)
    for key in ("files", "sizes"):
        manifest[key].update({k: v for k, v in _manifest(other)[key].items() if k.startswith("bm25/")})
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError, match="5 in BM25"):
        load_index(target, fake_embedder)


def test_top_n_is_the_stable_argsort_set():
    rng = np.random.default_rng(1)
    for _ in range(200):
        scores = rng.integers(0, 5, rng.integers(1, 80)).astype(np.float32)  # many ties
        n = int(rng.integers(1, 90))
        assert set(store._top_n(scores, n)) == set(np.argsort(-scores, kind="stable")[:n])


def test_an_older_format_keeps_its_vectors_when_rebuilt(seed_index, tmp_path, fake_embedder):
    target = tmp_path / "index"
    manifest = _manifest(target)
    manifest["format_version"] = store.FORMAT_VERSION - 1
    (target / "manifest.json").write_text(json.dumps(manifest))
    fake_embedder.texts_embedded = 0
    rebuilt = build_index(load_documents([SEED]), fake_embedder, target)
    assert fake_embedder.texts_embedded == 0 and rebuilt.manifest["reused"] == len(rebuilt)


def test_adding_a_document_grows_the_ivf_instead_of_training_it_again(approximate, tmp_path, fake_embedder,
                                                                      monkeypatch):
    import faiss

    from qa.service import Service

    extra = tmp_path / "extra.txt"
    extra.write_text("Early warning\n\n1. The Ombudsperson office keeps a register of early warning signals.\n\n"
                     "2. Each signal is reviewed by the regional desks within thirty days.\n")
    service = Service(index_path=approximate, embedder=fake_embedder)
    built = []
    original = faiss.IndexIVFFlat

    def counting(*args):
        built.append(args)
        return original(*args)

    monkeypatch.setattr(faiss, "IndexIVFFlat", counting)
    grown = service.add_documents([extra])
    assert built == []  # the centroids were not trained again
    assert len(grown) > 19 and grown.faiss_index.ntotal == len(grown)
    reloaded = load_index(approximate, fake_embedder)
    assert reloaded.faiss_index.ntotal == len(reloaded) > 19
    assert reloaded.search("Ombudsperson register of early warning signals", k=1)[0].paragraph.document == "extra.txt"
    # A rebuild that drops a document changes the order: the index is built anew.
    build_index(load_documents([SEED]), fake_embedder, approximate)
    assert len(built) == 1


def test_a_damaged_previous_faiss_file_is_not_grown(approximate, tmp_path, fake_embedder):
    (approximate / "faiss.index").write_bytes(b"garbage")
    rebuilt = build_index(load_documents([SEED]), fake_embedder, approximate)  # same paragraphs
    assert rebuilt.faiss_index.ntotal == len(rebuilt)
    assert load_index(approximate, fake_embedder).search("veto restraint France Mexico", k=1)[0].paragraph.id == DOC + "11"


def test_the_retrieval_bench_runs_and_measures_recall(monkeypatch, capsys):
    from qa import bench

    monkeypatch.setattr(store, "APPROXIMATE_FROM", 300)
    small, large = bench.bench_retrieval((200, 400), queries=20, dimension=32)
    assert (small["faiss"], large["faiss"]) == ("flat", "ivf")
    assert small["recall_at_10"] == 1.0 and 0.9 <= large["recall_at_10"] <= 1.0
    assert all(r["load_s"] > 0 and r["median_ms"] > 0 and r["disk_mb"] > 0 for r in (small, large))
    assert set(large["probe_sweep"]) and all(0 < recall <= 1 for recall, _ in large["probe_sweep"].values())
    bench.print_retrieval([small, large])
    assert "| 400 | ivf |" in capsys.readouterr().out


def test_a_larger_collection_gets_more_lists_in_powers_of_two():
    assert store._faiss_spec(store.APPROXIMATE_FROM - 1) == {"type": "flat"}
    specs = [store._faiss_spec(n) for n in (50_000, 100_000, 300_000, 1_000_000, 10_000_000)]
    assert [s["lists"] for s in specs] == [1024, 1024, 2048, 4096, 16384]
    assert all(s["probes"] >= store.IVF_MIN_PROBES and s["probes"] <= s["lists"] for s in specs)
    # Within one power of two the spec does not change, so a growing index keeps its centroids.
    assert store._faiss_spec(60_000) == store._faiss_spec(90_000)


@pytest.fixture
def verified_later(tmp_path, fake_embedder, monkeypatch):
    monkeypatch.setattr(store, "VERIFY_AT_LOAD_BYTES", 0)  # every index counts as large
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    return target


def test_a_large_index_loads_without_reading_its_paragraphs(verified_later, fake_embedder, monkeypatch):
    from qa.documents import Paragraph

    read = []
    original = Paragraph.from_dict.__func__
    monkeypatch.setattr(Paragraph, "from_dict", classmethod(lambda cls, data: read.append(1) or original(cls, data)))
    loaded = load_index(verified_later, fake_embedder)
    assert read == [] and len(loaded) == 19
    assert loaded.verification.wait(10) and loaded.verification.problem is None
    assert loaded.search("veto restraint France Mexico", k=1)[0].paragraph.id == DOC + "11"
    assert 0 < len(read) < 19  # only the candidates it returned were read
    assert loaded.paragraphs[-1].id == loaded.by_id[loaded.paragraphs[-1].id].id


def test_a_large_index_changed_in_place_is_caught_in_the_background(verified_later, fake_embedder):
    vectors = bytearray((verified_later / "vectors.npy").read_bytes())
    vectors[-5] ^= 0xFF  # same size: only the checksum can tell
    (verified_later / "vectors.npy").write_bytes(bytes(vectors))
    loaded = load_index(verified_later, fake_embedder)  # loads at once
    assert loaded.verification.wait(10)
    with pytest.raises(IndexStoreError, match="vectors.npy is corrupt or was changed after the build"):
        loaded.search("veto restraint", k=1)


def test_a_large_index_of_the_wrong_size_is_refused_at_load(verified_later, fake_embedder):
    with open(verified_later / "faiss.index", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(IndexStoreError, match="faiss.index is corrupt or was changed after the build \\(its size"):
        load_index(verified_later, fake_embedder)


def test_a_paragraph_record_is_checked_when_it_is_read(verified_later, fake_embedder):
    # A record damaged without changing the line lengths or the manifest's sizes.
    path = verified_later / "paragraphs.jsonl"
    data = path.read_bytes()
    first = data.index(b"\n")
    path.write_bytes(b"[" + b" " * (first - 2) + b"]" + data[first:])
    loaded = load_index(verified_later, fake_embedder)
    with pytest.raises(IndexStoreError, match="line 1 is not a paragraph record"):
        loaded.paragraphs[0]
    assert loaded.paragraphs[1].text  # the others still read
