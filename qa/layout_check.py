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

Then the same documents against `blind/<name>.blind.jsonl`, expected files written by someone
who saw only the README's label scheme and the document (testsets/layout/SOURCES.md). A person
copies first words as they see them, with the clause marker ("1.1.", "(a)") or Markdown markup
the reader strips from a paragraph's text, so there first words are compared on letters and
digits after a leading marker. These figures are reported, not held to the floor: where the
blind reading and the scheme differ, the README's label-scheme section says which reading the
scheme keeps and why. `--misses` lists every disagreement.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

from .config import REPO_ROOT
from .documents import SUPPORTED_SUFFIXES, load_document

LAYOUT_DIR = REPO_ROOT / "testsets" / "layout"
BLIND_DIR = LAYOUT_DIR / "blind"
MATCH_FLOOR = 0.95
# A marker a person may copy into the first words but the reader keeps out of the text:
# Markdown heading/list/quote marks, "§", clause numbers "1.1.", items "(a)", "b)", "(iv)".
_LEADING_MARKER = re.compile(r"^\s*(?:[#>*+-]+\s+)?(?:§\s*)?(?:\d{1,3}(?:\.\d{1,3})*[.)]|\([a-z]{1,2}\)|[a-z]\)"
                             r"|\([ivxlc]{1,5}\)|\(\d{1,2}\))\s+")


def _norm(text: str) -> str:
    return " ".join(text.replace("“", '"').replace("”", '"').split()).lower()


def _letters(text: str) -> str:
    """Letters and digits only, after a leading marker: how the blind comparison reads text."""
    return re.sub(r"[^0-9a-z]+", "", _LEADING_MARKER.sub("", text).lower())


def check_document(path: Path, expected_path: Path, blind: bool = False) -> dict:
    """Compare one document's paragraphs with an expected file (`blind`: the tolerant reading
    of first words above, and a count of boundaries found whatever their label)."""
    lines = [json.loads(line) for line in expected_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    running = []
    if lines and "running" in lines[0]:
        running = lines.pop(0)["running"]
    paragraphs = load_document(path).paragraphs
    norm = _letters if blind else _norm
    by_label = {p.label: p for p in paragraphs}
    starts = [norm(p.text) for p in paragraphs]
    matched = bounded = 0
    misses = []
    for row in lines:
        first = norm(row["first_words"])
        found = by_label.get(row["label"])
        bounded += any(start.startswith(first) for start in starts)
        if found is not None and norm(found.text).startswith(first):
            matched += 1
        else:
            ours = [p.label for p, start in zip(paragraphs, starts) if start.startswith(first)]
            misses.append((row["label"], ours[0] if ours else None, row["first_words"]))
    extra = max(0, len(paragraphs) - len(lines))  # paragraphs nobody expected: boundaries off
    total = len(lines) + extra
    share = matched / total if lines else 0.0
    words = [len(p.text.split()) for p in paragraphs]
    left = sorted({line for line in running for p in paragraphs if _norm(line) in _norm(p.text)})
    return {"document": path.name, "paragraphs": len(paragraphs), "expected": len(lines), "match": share,
            "boundaries": bounded / total if lines else 0.0,
            "median_words": statistics.median(words) if words else 0, "max_words": max(words, default=0),
            "running_left": left, "misses": misses}


def blind_rows(folder: Path = BLIND_DIR) -> list[dict]:
    """`check_document` against each blind annotation in `folder`."""
    rows = []
    for expected in sorted(folder.glob("*.blind.jsonl")) if folder.is_dir() else []:
        document = folder.parent / expected.name[: -len(".blind.jsonl")]
        if document.exists():
            rows.append(check_document(document, expected, blind=True))
    return rows


def run(folder: Path = LAYOUT_DIR, out=sys.stdout, misses: bool = False) -> int:
    """Print both tables; exit status 1 when a document is below the floor of the shipped files."""
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
        print(f"\n{r['document']}: below the floor; missed {[m[0] for m in r['misses'][:10]]}; "
              f"running lines left {r['running_left']}", file=out)
    blind = blind_rows(folder / "blind")
    if blind:
        print("\n## The same documents against the blind annotation (testsets/layout/blind; reported, no floor)",
              file=out)
        print("| document | paragraphs (reader / blind) | same boundaries | same label and boundaries |\n"
              "|---|---|---|---|", file=out)
        for r in blind:
            print(f"| {r['document']} | {r['paragraphs']} / {r['expected']} | {r['boundaries']:.3f} | "
                  f"{r['match']:.3f} |", file=out)
    if misses:
        for r in rows + blind:
            for expected, ours, first in r["misses"]:
                print(f"{r['document']}: expected {expected!r}, reader {ours!r}: {first}", file=out)
    return 1 if failed or not rows else 0
