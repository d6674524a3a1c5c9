"""Language data as data: word lists the checks use, loaded once from `english.json`.

Every list in the file has a note beside it (the keys starting with "_") saying what it is
for. Code asks for a list by name; adding a language means adding a file with the same keys.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

_FOLDER = Path(__file__).resolve().parent


@lru_cache(maxsize=4)
def load(language: str = "english") -> dict:
    data = json.loads((_FOLDER / f"{language}.json").read_text(encoding="utf-8"))
    return {key: value for key, value in data.items() if not key.startswith("_")}


def words(name: str, language: str = "english") -> frozenset[str]:
    """A space-separated list from the lexicon, as a set of lower-case words."""
    return frozenset(load(language)[name].lower().split())


def numbers(name: str, language: str = "english") -> dict[str, float]:
    """A word -> value table ('cardinals', 'ordinals')."""
    return dict(load(language)[name])
