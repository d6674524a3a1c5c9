"""Kill-and-corrupt suite: every damaged index is one IndexStoreError line (and `qa` exit 1,
one line on stderr, no traceback); a build killed at any stage leaves the old index intact
and the next build leaves no debris."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qa import cli
from qa.documents import load_documents
from qa.errors import IndexStoreError
from qa.service import Service
from qa.store import build_index, load_index

from .conftest import REPO, SEED, FakeEmbedder


@pytest.fixture
def target(tmp_path, fake_embedder):
    target = tmp_path / "ix"
    build_index(load_documents([SEED]), fake_embedder, target)
    return target


def _manifest(target):
    return json.loads((target / "manifest.json").read_text())


def _edit_manifest(target, change):
    manifest = _manifest(target)
    manifest = change(manifest)
    (target / "manifest.json").write_text(json.dumps(manifest))


def _old_style(target):
    """As an index without checksums and sizes: the other checks must catch the damage alone."""
    _edit_manifest(target, lambda m: {k: v for k, v in m.items() if k not in ("files", "sizes")})


def _edit_paragraphs(target, change):
    lines = [json.loads(x) for x in (target / "paragraphs.jsonl").read_text().splitlines()]
    change(lines)
    encoded = [(json.dumps(x) + "\n").encode() for x in lines]
    (target / "paragraphs.jsonl").write_bytes(b"".join(encoded))
    # Where each line starts, kept in step: what is left to catch the edit is the records'
    # own check (and the checksum and size, where the manifest has them).
    np.save(target / "offsets.npy", np.cumsum([0] + [len(line) for line in encoded]).astype(np.int64))


def _faiss_of_dimension(target, dimension):
    import faiss

    index = faiss.IndexFlatIP(dimension)
    index.add(np.random.default_rng(0).random((19, dimension), dtype=np.float32))
    faiss.write_index(index, str(target / "faiss.index"))


def _set(key, value):
    return lambda m: {**m, key: value}


def _null_text(lines):
    lines[3]["text"] = None


def _spain_and_italy(lines):
    lines[13]["text"] = lines[13]["text"].replace("France and Mexico", "Spain and Italy")


def _random_vectors(target):
    shape = np.load(target / "vectors.npy").shape
    np.save(target / "vectors.npy", np.random.default_rng(1).random(shape, dtype=np.float32))


CORRUPTIONS = {  # name: (damage, old-style index?, words the one-line message must have)
    "manifest is a list": (lambda t: (t / "manifest.json").write_text("[1, 2]"), False, "not a JSON object"),
    "manifest not UTF-8": (lambda t: (t / "manifest.json").write_bytes(b"\xff\xfe{"), False, "manifest.json is corrupt"),
    "manifest empty": (lambda t: (t / "manifest.json").write_text(""), False, "manifest.json is corrupt"),
    "sources not a list": (lambda t: _edit_manifest(t, _set("sources", "corpus")), False, '"sources" must be a list'),
    "a source not an object": (lambda t: _edit_manifest(t, _set("sources", [None])), False, "source 1 must have"),
    "count missing": (lambda t: _edit_manifest(t, lambda m: {k: v for k, v in m.items() if k != "count"}), False, '"count"'),
    "dimension a string": (lambda t: _edit_manifest(t, _set("dimension", "512")), False, '"dimension"'),
    "embedder null": (lambda t: _edit_manifest(t, _set("embedder", None)), False, '"embedder"'),
    "checksums malformed": (lambda t: _edit_manifest(t, _set("files", {"faiss.index": "x"})), False, '"files"'),
    "copy outside the index": (lambda t: _edit_manifest(t, lambda m: {**m, "sources": [
        {**m["sources"][0], "copy": "../../etc/passwd"}]}), False, "outside the index"),
    "null paragraph text": (lambda t: _edit_paragraphs(t, _null_text), False, "paragraphs.jsonl is corrupt or was changed"),
    "null paragraph text, old index": (lambda t: _edit_paragraphs(t, _null_text), True, "line 4 is not a paragraph record"),
    "paragraph line a list, old index": (lambda t: _edit_paragraphs(t, lambda x: x.__setitem__(0, [1])), True,
                                         "line 1 is not a paragraph record"),
    "repeated paragraph id, old index": (lambda t: _edit_paragraphs(t, lambda x: x.__setitem__(1, x[0])), True, "repeats id"),
    "paragraphs not UTF-8, old index": (lambda t: (t / "paragraphs.jsonl").write_bytes(b"\xff\xfe"), True,
                                        "paragraphs.jsonl is corrupt"),
    "edited paragraph": (lambda t: _edit_paragraphs(t, _spain_and_italy), False, "paragraphs.jsonl is corrupt or was changed"),
    "random vectors": (_random_vectors, False, "vectors.npy is corrupt or was changed"),
    "NaN vectors, old index": (lambda t: np.save(t / "vectors.npy", np.full(np.load(t / "vectors.npy").shape, np.nan,
                                                                            dtype=np.float32)), True, "not a finite float matrix"),
    "pickled vectors, old index": (lambda t: np.save(t / "vectors.npy", np.array([{"a": 1}], dtype=object)), True,
                                   "vectors of the index"),
    "truncated vectors, old index": (lambda t: np.save(t / "vectors.npy", np.load(t / "vectors.npy")[:3]), True,
                                     "is inconsistent ("),
    "FAISS of another dimension": (lambda t: _faiss_of_dimension(t, 64), False, "faiss.index is corrupt or was changed"),
    "FAISS of another dimension, old index": (lambda t: _faiss_of_dimension(t, 64), True, "faiss.index has dimension 64"),
    "FAISS garbage, old index": (lambda t: (t / "faiss.index").write_bytes(b"garbage" * 10), True, "vectors of the index"),
    "FAISS empty, old index": (lambda t: (t / "faiss.index").write_bytes(b""), True, "vectors of the index"),
    "FAISS a folder": (lambda t: ((t / "faiss.index").unlink(), (t / "faiss.index").mkdir()), False, "missing faiss.index"),
    "paragraphs missing": (lambda t: (t / "paragraphs.jsonl").unlink(), False, "missing paragraphs.jsonl"),
    "count wrong, old index": (lambda t: _edit_manifest(t, _set("count", 5)), True, "is inconsistent ("),
    "sources do not add up, old index": (lambda t: _edit_manifest(t, lambda m: {**m, "sources": [
        {**m["sources"][0], "paragraphs": 3}]}), True, "sources do not add up"),
    "format version": (lambda t: _edit_manifest(t, _set("format_version", "1")), False, "format version 1,"),
    "statistics edited": (lambda t: _edit_json(t / "statistics.json", lambda d: d["names"].append("spain")), False,
                          "statistics.json is corrupt or was changed"),
    "statistics not JSON, old index": (lambda t: (t / "statistics.json").write_text("{"), True, "statistics.json is corrupt"),
    "statistics missing a part, old index": (lambda t: _edit_json(t / "statistics.json", lambda d: d.pop("idf")), True,
                                             "statistics.json is corrupt"),
    "labels edited": (lambda t: _edit_json(t / "labels.json", lambda d: d["¶1"].append(10**6)), False,
                      "labels.json is corrupt or was changed"),
    "ids truncated, old index": (lambda t: np.save(t / "ids.npy", np.load(t / "ids.npy")[:3]), True, "ids.npy is corrupt"),
    "flattened text missing": (lambda t: (t / "flat.txt").unlink(), False, "missing flat.txt"),
}


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture(params=list(CORRUPTIONS))
def corrupted(request, target):
    damage, old_style, expected = CORRUPTIONS[request.param]
    damage(target)
    if old_style:
        _old_style(target)
    return target, expected


def test_each_corruption_is_one_line(corrupted, fake_embedder):
    target, expected = corrupted
    with pytest.raises(IndexStoreError) as caught:
        load_index(target, fake_embedder)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert "qa index" in message or "rebuild" in message


def test_each_corruption_exits_1_with_one_line(corrupted, capsys, monkeypatch):
    target, expected = corrupted
    monkeypatch.setattr(cli, "_service", lambda args: Service(index_path=args.index, embedder=FakeEmbedder()))
    assert cli.main(["--index", str(target), "search", "veto restraint"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("qa search: error: ") and expected in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert captured.out == ""


def test_any_unexpected_failure_is_one_line(target, fake_embedder, monkeypatch):
    import faiss

    def broken(*args):
        raise TypeError("something odd\nwith a second line")

    monkeypatch.setattr(faiss, "read_index", broken)
    with pytest.raises(IndexStoreError, match=r"cannot be read \(TypeError: something odd\): rebuild") as caught:
        load_index(target, fake_embedder)
    assert "\n" not in str(caught.value)


def test_labels_are_checked_when_first_read(target, fake_embedder):
    # Read on first use, not at load (a million of them take a second): an index without
    # checksums still finds a damaged file then, and says so in one line.
    _edit_json(target / "labels.json", lambda d: d["¶1"].append(10**6))
    _old_style(target)
    labels = load_index(target, fake_embedder).statistics.labels
    with pytest.raises(IndexStoreError, match="labels.json is corrupt \\(a label points past the paragraphs\\)"):
        labels["¶1"]


def test_checksums_are_recorded_and_an_old_index_still_loads(target, fake_embedder):
    files = _manifest(target)["files"]
    assert set(files) == {"paragraphs.jsonl", "offsets.npy", "vectors.npy", "faiss.index", "bm25/data.csc.index.npy",
                          "bm25/indices.csc.index.npy", "bm25/indptr.csc.index.npy", "bm25/vocab.index.json",
                          "bm25/params.index.json", "ids.npy", "statistics.json", "labels.json", "flat.txt"}
    _old_style(target)  # an index built before this change: no checksums in its manifest
    assert load_index(target, fake_embedder).search("veto restraint France Mexico", k=1)[0].paragraph.label == "¶11"


# --------------------------------------------------------------------------- killed builds

KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    import faiss, numpy
    from qa import store
    from qa.documents import load_documents
    from tests.conftest import SEED, FakeEmbedder

    stage, target = sys.argv[1], Path(sys.argv[2])
    other = target.parent / "other.md"
    other.write_text("# Other\\n\\nA completely different document about rivers and mountains.\\n")
    documents = load_documents([SEED, other])
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    if stage == "vectors":
        numpy.save = die
    elif stage == "faiss":
        faiss.write_index = die
    elif stage == "manifest":
        Path.write_text = die
    elif stage == "between renames":
        real, calls = os.replace, []
        def second_dies(*args):
            calls.append(args)
            die() if len(calls) == 2 else real(*args)
        os.replace = second_dies
    store.build_index(documents, FakeEmbedder(), target)
""")


@pytest.mark.parametrize("stage", ["vectors", "faiss", "manifest", "between renames"])
def test_build_killed_at_each_stage(tmp_path, target, fake_embedder, stage):
    before = (target / "paragraphs.jsonl").read_text()
    result = subprocess.run([sys.executable, "-c", KILLER, stage, str(target), str(REPO)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr  # it really was killed, at that stage
    assert [p for p in tmp_path.iterdir() if ".building-" in p.name]  # what a kill leaves behind
    assert (load_index(target, fake_embedder).paragraphs and (target / "paragraphs.jsonl").read_text() == before)
    rebuilt = build_index(load_documents([SEED]), fake_embedder, target)  # the lock died with the process
    assert len(rebuilt) > 0
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name or p.name == ".ix.old"]
