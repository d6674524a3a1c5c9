"""The label scheme: what a citation calls each paragraph (README, "Paragraph labels").

`qa.documents` splits a document into units (a paragraph with its kind, its section and the
nearest number above it); `label_units` names each one. The document's own numbering comes
first ("¶11", "2.3(b)", "§ 4"), then a defined term or an entry's name in a section of those
('Definitions: “Licensor”', "OPTIONS: -k --keep"), then a position: under the nearest
numbered heading ("5 ¶2"), heading ("Coding ¶2"), page ("p. 3 ¶2") or in the document ("¶2").
Labels are at most LABEL_CHARS characters and free of commas and "and", where a citation
marker is split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RECIPIENTS_SECTION = "Recipients"  # a letter's address block (qa.documents._mark_sign_off)

_LABEL_SECTION_CHARS = 32  # a section name in a label is cut to this (a citation marker holds 40)
_TERM_CHARS = 30
_MAX_LABEL = 38  # a citation marker holds 40 characters (qa/grounding.py), and "(2)" may follow


@dataclass
class Unit:
    """A paragraph as the splitter found it, before it has a label."""

    text: str
    kind: str
    number: int | None
    marker: str
    term: str
    section: str
    leaf: str  # the nearest heading, for labels
    context: str  # the nearest number: a numbered heading's or clause's, "¶4"
    context_from_heading: bool
    page: int | None
    entry: str = ""  # the entry label a continuation paragraph belongs to


def label_units(units: list[Unit], numbered_doc: bool) -> list[str]:
    """The label of each unit (the scheme: this module's docstring and the README)."""
    labels: list[str] = []
    counts: dict[tuple, int] = {}
    members: dict[tuple, list[int]] = {}
    seen_number = False
    last_number = ""
    titles = 0
    for i, u in enumerate(units):
        section = section_name(u.leaf) if u.leaf else ""
        if u.kind == "title":
            titles += 1
            labels.append("title" if titles == 1 else f"title {titles}")
            continue
        if u.kind == "numbered":
            seen_number, last_number = True, f"¶{u.number}"
            labels.append(f"¶{u.number}")
            continue
        if u.kind == "clause":
            labels.append(u.marker)
            counts[("ctx", u.marker)] = 1
            continue
        if u.kind == "item":
            where = u.context or (f"{section} " if section else "")
            labels.append(f"{where}({u.marker})")
            continue
        if u.kind == "listnum":
            where = u.context or section or ("" if u.page is None else f"p. {u.page}")
            labels.append(f"{where} item {u.marker}".strip())
            continue
        if u.kind in ("definition",) or (u.kind == "entry"):
            term = shorten(_flat(u.term), _TERM_CHARS)
            term = f"“{term}”" if u.kind == "definition" else term
            room = _MAX_LABEL - len(term) - 2  # the section is cut to leave the term whole
            fits = room >= 8 and (len(section) <= room or " " in section[:room + 1])
            section = shorten(section, room) if fits else ""  # never half a word
            labels.append(f"{section}: {term}" if section else term)
            continue
        if u.kind == "entrypart":
            key = ("entry", u.section, u.entry)
            counts[key] = counts.get(key, 1) + 1
            term = shorten(_flat(u.entry), _TERM_CHARS)
            labels.append(f"{section}: {term} ¶{counts[key]}" if section else f"{term} ¶{counts[key]}")
            continue
        # A paragraph without its own number: its position.
        if u.section == RECIPIENTS_SECTION or (numbered_doc and not seen_number):
            prefix = "intro" if numbered_doc and not seen_number else ""
            key = ("intro",) if prefix else ("doc",)
            counts[key] = counts.get(key, 0) + 1
            labels.append(f"{prefix} {counts[key]}" if prefix else f"¶{counts[key]}")
            continue
        if u.context.startswith("¶"):  # after a numbered paragraph of a numbered document
            key = ("after", u.context)
            base = f"after {u.context}"
        elif u.context:
            key = ("ctx", u.context)
            base = u.context
        elif section:
            key = ("section", u.section, u.leaf)
            base = section
        elif u.page is not None:
            key = ("page", u.page)
            base = f"p. {u.page}"
        elif numbered_doc:
            key = ("after", last_number)
            base = f"after {last_number}"
        else:
            key = ("doc",)
            base = ""
        counts[key] = counts.get(key, 0) + 1
        members.setdefault(key, []).append(i)
        labels.append(f"{base} ¶{counts[key]}".strip())
    for key, indices in members.items():
        if key[0] == "after" and len(indices) == 1:
            labels[indices[0]] = f"after {key[1]}"
    # Under a numbered heading with a single paragraph, that paragraph is the number itself ("2.2").
    for key, indices in members.items():
        if key[0] == "ctx" and len(indices) == 1 and counts[key] == 1 and units[indices[0]].context_from_heading:
            labels[indices[0]] = key[1]
    return labels


def section_name(heading: str) -> str:
    """A heading as a label shows it: without its number, short, no commas or "and"
    (a citation marker is split at those)."""
    name = re.sub(r"^(?:§\s*)?\d{1,3}(?:\.\d{1,3})*[.)]?\s+", "", heading).strip(" .:")
    name = re.sub(r"\s*,\s*", " ", name).replace('"', "").replace("“", "").replace("”", "")
    name = re.sub(r"\band\b", "&", name)
    return shorten(name, _LABEL_SECTION_CHARS)


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit + 1].rsplit(" ", 1)[0] if " " in text[:limit + 1] else text[:limit]
    return cut.rstrip(" -–—:;,.")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
