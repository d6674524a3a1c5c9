"""One line per indexed document for a newcomer: its title, its date, its length.

Taken from the document itself (no model): the title is the document's "title" paragraph, or
its first bold or "#" heading line, or its first heading or line; the date is the first date
written after the title (else anywhere near the top); the length is its paragraphs and words.
No gradio here: the web chat (qa/ui.py) renders what `describe_documents` returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .documents import read_text

TITLE_CHARS = 110  # one line at 1280 px next to the file name; longer titles are cut at a word
HEAD_CHARS = 4000  # where a title or a date is looked for
HEAD_PARAGRAPHS = 20  # ... and the paragraphs a title may be

_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December|"
           "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec")
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+\d{{4}}"  # 6 September 2017
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"  # September 6, 2017
    rf"|\d{{4}}-\d{{2}}-\d{{2}}"  # 2017-09-06
    rf"|(?:{_MONTHS})\s+\d{{4}})\b")  # June 2007


@dataclass(frozen=True)
class DocumentSummary:
    name: str
    title: str
    date: str
    paragraphs: int
    words: int

    def line(self) -> str:
        """"“Title” · 6 September 2017 · 19 paragraphs, 2,141 words"."""
        parts = [f"“{self.title}”"] if self.title else []
        if self.date and self.date not in self.title:
            parts.append(self.date)
        parts.append(f"{self.paragraphs} paragraph{'s' if self.paragraphs != 1 else ''}, "
                     f"{self.words:,} word{'s' if self.words != 1 else ''}")
        return " · ".join(parts)


def _shorten(text: str, limit: int = TITLE_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:—-")
    return cut + "…"


def _plain(line: str) -> str:
    line = re.sub(r"https?://\S+|www\.\S+", "", line)  # a URL in a title block is not its name
    return re.sub(r"[*_`#>]+", "", line).strip()


def title_of(raw: str, paragraphs) -> tuple[str, int]:
    """The document's title and where it ends in `raw` (0 if not found in it)."""
    for p in paragraphs:
        if p.label == "title" and p.text.strip():
            first = p.text.strip().split("\n")[0]
            at = raw.find(first[:40])
            return _shorten(_plain(first)), (at + len(first)) if at >= 0 else 0
    head = raw[:HEAD_CHARS]
    bold = re.search(r"\*\*([^*]{8,400}?)\*\*", head)  # a bold title block, possibly over lines
    heading = re.search(r"(?m)^#{1,2}\s+(\S.{2,200})$", head)
    setext = re.search(r"(?m)^(\S.{1,200})\n=+\s*$", head)  # Title / =====
    found = min((m for m in (bold, heading, setext) if m), key=lambda m: m.start(), default=None)
    if found:
        return _shorten(_plain(found.group(1))), found.end()
    sections = [p.section for p in paragraphs if p.section]
    if sections:
        first = sections[0].split(" > ")[0]
        if first.upper() == "NAME" and paragraphs[0].text.strip():  # a manual page: "gzip - compress ..."
            return _shorten(paragraphs[0].text.strip().split("\n")[0]), 0
        return _shorten(first), 0
    for line in raw.splitlines():
        if _plain(line):
            return _shorten(_plain(line)), 0
    return "", 0


def date_of(raw: str, after: int = 0) -> str:
    head = raw[:HEAD_CHARS + after]
    found = _DATE.search(head, after) or _DATE.search(head)
    return " ".join(found.group(0).split()) if found else ""


def describe(name: str, paragraphs, raw: str, count: int | None = None, words: int | None = None) -> DocumentSummary:
    """`paragraphs`: the document's first paragraphs at least (a title is looked for there);
    `count` and `words`: its length, when not all of its paragraphs are given."""
    title, end = title_of(raw, paragraphs)
    words = sum(len(p.text.split()) for p in paragraphs) if words is None else words
    return DocumentSummary(name, title, date_of(raw, end), len(paragraphs) if count is None else count, words)


def describe_documents(index, source_file=None) -> list[DocumentSummary]:
    """A summary per document of a ParagraphIndex, in its manifest's order.

    `source_file(source) -> Path` finds a document's file (the index's own copy); a document
    whose file cannot be read is described from its paragraphs alone. Only each document's
    first HEAD_PARAGRAPHS paragraphs are read (an index keeps a document's paragraphs
    together, in its manifest's order); its length comes from the index's statistics, so a
    million paragraphs are not read for a page load.
    """
    words = index.statistics.document_words
    summaries, start = [], 0
    for source in index.manifest.get("sources", []):
        count = source["paragraphs"]
        paragraphs = index.paragraphs[start:start + min(count, HEAD_PARAGRAPHS)]
        start += count
        raw = ""
        try:
            path = source_file(source) if source_file else Path(source["path"])
            raw = read_text(path)
        except Exception:  # a missing or unreadable copy: the paragraphs still describe it
            raw = "\n\n".join(p.text for p in paragraphs[:5])
        summaries.append(describe(source["name"], paragraphs, raw, count, words.get(source["name"], 0)))
    return summaries
