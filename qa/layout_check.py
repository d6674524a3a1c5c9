"""How well documents are split as a reader sees them: `python -m qa.bench documents`.

For each document in testsets/layout/ with an expected file next to it (`<name>.expected.jsonl`,
one {"label", "first_words"} per paragraph, written by reading the document), it prints:

* paragraphs found;
* the share of expected paragraphs found with the same label *and* the same boundaries: a
  paragraph of that label exists and its text starts with the expected first words, and the
  paragraph count matches (floor 0.95 on every document);
* words per paragraph, median and max;
* running headers and footers left in the text: each `"running"` line listed in the
  expected file's first line ({"running": [...]}) that still occurs in a paragraph (floor: none).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from .config import REPO_ROOT
from .documents import SUPPORTED_SUFFIXES, load_document

LAYOUT_DIR = REPO_ROOT / "testsets" / "layout"
MATCH_FLOOR = 0.95


def _norm(text: str) -> str:
    return " ".join(text.replace("“", '"').replace("”", '"').split()).lower()


def check_document(path: Path, expected_path: Path) -> dict:
    lines = [json.loads(line) for line in expected_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    running = []
    if lines and "running" in lines[0]:
        running = lines.pop(0)["running"]
    paragraphs = load_document(path).paragraphs
    by_label = {p.label: p for p in paragraphs}
    matched = 0
    misses = []
    for row in lines:
        found = by_label.get(row["label"])
        if found is not None and _norm(found.text).startswith(_norm(row["first_words"])):
            matched += 1
        else:
            misses.append(row["label"])
    extra = max(0, len(paragraphs) - len(lines))  # paragraphs nobody expected: boundaries off
    share = matched / (len(lines) + extra) if lines else 0.0
    words = [len(p.text.split()) for p in paragraphs]
    left = sorted({line for line in running for p in paragraphs if _norm(line) in _norm(p.text)})
    return {"document": path.name, "paragraphs": len(paragraphs), "expected": len(lines), "match": share,
            "median_words": statistics.median(words) if words else 0, "max_words": max(words, default=0),
            "running_left": left, "misses": misses}


def run(folder: Path = LAYOUT_DIR, out=sys.stdout) -> int:
    rows = []
    for path in sorted(folder.iterdir()):
        expected = path.with_name(path.name + ".expected.jsonl")
        if path.suffix.lower() in SUPPORTED_SUFFIXES and expected.exists() and not path.name.startswith("SOURCES"):
            rows.append(check_document(path, expected))
    print("## Documents as people write them (testsets/layout)", file=out)
    print("| document | paragraphs | expected | label + boundaries match | median words | max words | "
          "headers/footers left |\n|---|---|---|---|---|---|---|", file=out)
    for r in rows:
        print(f"| {r['document']} | {r['paragraphs']} | {r['expected']} | {r['match']:.3f} | "
              f"{r['median_words']:g} | {r['max_words']} | {len(r['running_left'])} |", file=out)
    failed = [r for r in rows if r["match"] < MATCH_FLOOR or r["running_left"]]
    for r in failed:
        print(f"\n{r['document']}: below the floor; missed {r['misses'][:10]}; running lines left {r['running_left']}",
              file=out)
    return 1 if failed or not rows else 0
