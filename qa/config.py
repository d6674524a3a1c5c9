"""Where things live and the settings a user may change.

Everything has a default that works from a fresh clone; environment variables override
the folders (useful on a laptop where the repository is read-only, and in tests).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    """The bundled documents served by default."""
    return Path(os.environ.get("QA_CORPUS", REPO_ROOT / "corpus"))


def index_dir() -> Path:
    """The index the app and the CLI use unless told otherwise."""
    return Path(os.environ.get("QA_INDEX", REPO_ROOT / "index" / "default"))


def cache_dir() -> Path:
    """Per-user cache for the assembled generator (about 1 GB, built once, reused by clones)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qa-chatbot"
    return Path(os.environ.get("QA_CACHE", default))


def uploads_dir() -> Path:
    """Documents added from the web page are copied here, under names the app chooses."""
    return Path(os.environ.get("QA_UPLOADS", REPO_ROOT / "index" / "uploads"))


def set_offline() -> None:
    """No hub access, ever: every library that could reach one is told not to."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
