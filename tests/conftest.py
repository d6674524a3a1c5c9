"""Fakes and shared fixtures.

Most tests run in milliseconds on a fake embedder (hashed bag of words: texts sharing words
get close vectors) and a scripted generator (returns what the test says the model would
write). Tests marked `slow` load the real models once per session.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import config
from qa.service import Service

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "corpus" / "r2p-2017-dialogue-summary.txt"
DOC = "r2p-2017-dialogue-summary#"


class FakeEmbedder:
    name = "fake-bag-of-words"
    sha256 = "f" * 64
    dimension = 512

    def __init__(self):
        self.calls = 0
        self.texts_embedded = 0

    def encode(self, texts, progress=False):
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]{3,}", text.lower()):
                if word in {"the", "and", "for", "which", "what", "who", "that", "with", "this", "was", "were"}:
                    continue
                out[row, int(hashlib.md5(word[:6].encode()).hexdigest(), 16) % self.dimension] += 1
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
        return out


class ScriptedGenerator:
    """Streams a fixed reply (or the reply a function of the messages returns)."""

    name = "scripted"

    def __init__(self, reply):
        self.reply = reply
        self.seen: list[list[dict]] = []

    def stream(self, messages, max_new_tokens=120):
        self.seen.append(messages)
        text = self.reply(messages) if callable(self.reply) else self.reply
        for piece in re.findall(r"\S+\s*", text):
            yield piece


class NoModels(Service):
    """A service that fails the test if anything asks it for a model."""

    @property
    def embedder(self):
        raise AssertionError("the embedder was loaded")

    def generator(self, progress=None):
        raise AssertionError("the generator was loaded")


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def seed_index(tmp_path, fake_embedder):
    from qa.documents import load_documents
    from qa.store import build_index

    return build_index(load_documents([SEED]), fake_embedder, tmp_path / "index")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    config.set_offline()


# --------------------------------------------------------------------------- real models


@pytest.fixture(scope="session")
def real_embedder():
    from qa.models import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def real_generator():
    from qa.models import Generator

    return Generator()


@pytest.fixture(scope="session")
def real_index(tmp_path_factory, real_embedder):
    from qa.documents import load_documents
    from qa.store import build_index

    return build_index(load_documents([SEED]), real_embedder, tmp_path_factory.mktemp("real") / "index")


@pytest.fixture
def copy_of_corpus(tmp_path):
    target = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", target)
    return target
