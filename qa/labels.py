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

LABEL_CHARS = 40  # a citation marker holds 40 characters (qa/grounding.py)
# Beside a defined term or an entry's name, a section name is cut to this, the term to that.
_LABEL_SECTION_CHARS = 32
_TERM_CHARS = 30


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


# A section whose heading says it defines terms: "Definitions", "1. Definitions.", "Glossary",
# "Defined Terms", "Interpretation" (British drafting), "Definitions & Interpretation".
_DEFINITIONS_HEADING = re.compile(
    r"(?:the\s+)?(?:definitions?(?:\s+(?:&|of\s+terms))?(?:\s+interpretation)?|defined\s+terms|glossary(?:\s+of\s+terms)?"
    r"|terminology|interpretation)", re.IGNORECASE)
_QUOTED_TERM = re.compile(r"[\"“]([^\"”\n]{1,60})[\"”]")
_FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(])")
_NAMED_KINDS = ("title", "numbered", "clause", "item", "listnum", "entry", "entrypart")  # not counted by position


def settle_definitions(units: list[Unit]) -> None:
    """A defined term is a paragraph's label only in a section of definitions.

    In a section of definitions (its heading says so, or every paragraph but a lead-in line
    defines a term: a glossary) the terms are what a reader scans for, so each paragraph is
    named by its term — also one that defines it without "means" ('An interactive user
    interface displays "Appropriate Legal Notices" to the extent ...': the quoted term of its
    first sentence). Elsewhere a definition is one paragraph of running text ('The "System
    Libraries" of an executable work include ...' in "1. Source Code"): it is counted with the
    others ("1 ¶3"), so that ¶N is the Nth paragraph a reader sees under that heading, whether
    or not a paragraph happens to define a word."""
    groups: dict[tuple, list[Unit]] = {}
    for u in units:
        if u.kind not in _NAMED_KINDS and u.section != RECIPIENTS_SECTION:
            groups.setdefault((u.section, u.leaf, u.context), []).append(u)
    for (_, leaf, _), members in groups.items():
        body = members[1:] if members[0].text.rstrip().endswith(":") else members  # a lead-in line
        named = bool(leaf) and bool(_DEFINITIONS_HEADING.fullmatch(section_name(leaf, limit=None)))
        glossary = len(body) >= 2 and all(u.kind == "definition" for u in body)
        for u in members:
            if not (named or glossary):
                if u.kind == "definition":
                    u.kind = "body"
            elif u.kind == "body" and (quoted := _QUOTED_TERM.search(_FIRST_SENTENCE.split(u.text, 1)[0])):
                u.kind, u.term = "definition", quoted.group(1).strip()


def label_units(units: list[Unit], numbered_doc: bool, parts: list[int] | None = None) -> list[str]:
    """The label of each unit (the scheme: this module's docstring and the README).

    `parts`: how many parts each unit will be cut into (qa.documents._cap), so that a label
    leaves room for " part N" after it."""
    settle_definitions(units)
    parts = parts or [1] * len(units)
    labels: list[str] = []
    counts: dict[tuple, int] = {}
    members: dict[tuple, list[int]] = {}
    # Labels made of a heading's name and a suffix ("Coding" + " ¶2", " item 3", " (a)"): the
    # name is cut once per heading, to what its longest label leaves, so all of a section's
    # labels start alike and the name keeps as many words as LABEL_CHARS allows.
    headed: dict[tuple, list[tuple[int, str]]] = {}
    seen_number = False
    last_number = ""
    titles = 0

    def reserve(i: int) -> int:
        return len(f" part {parts[i]}") if parts[i] > 1 else 0

    for i, u in enumerate(units):
        heading_key = ("section", u.section, u.leaf)
        section = section_name(u.leaf, limit=None) if u.leaf else ""
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
            if u.context or not section:
                labels.append(f"{u.context}({u.marker})")
            else:
                labels.append("")
                headed.setdefault(heading_key, []).append((i, f" ({u.marker})"))
            continue
        if u.kind == "listnum":
            if u.context or not section:
                where = u.context or ("" if u.page is None else f"p. {u.page}")
                labels.append(f"{where} item {u.marker}".strip())
            else:
                labels.append("")
                headed.setdefault(heading_key, []).append((i, f" item {u.marker}"))
            continue
        if u.kind in ("definition", "entry"):
            term = shorten(_flat(u.term), _TERM_CHARS)
            term = f"“{term}”" if u.kind == "definition" else term
            room = LABEL_CHARS - reserve(i) - len(term) - 2  # the section is cut to leave the term whole
            section = section_name(u.leaf) if u.leaf else ""
            fits = room >= 8 and (len(section) <= room or " " in section[:room + 1])
            section = shorten(section, room) if fits else ""  # never half a word
            labels.append(f"{section}: {term}" if section else term)
            continue
        if u.kind == "entrypart":
            key = ("entry", u.section, u.entry)
            counts[key] = counts.get(key, 1) + 1
            term = shorten(_flat(u.entry), _TERM_CHARS)
            section = section_name(u.leaf) if u.leaf else ""
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
            key = heading_key
            base = ""
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
        if key is heading_key:
            labels.append("")
            headed.setdefault(heading_key, []).append((i, f" ¶{counts[key]}"))
        else:
            labels.append(f"{base} ¶{counts[key]}".strip())
    for key, entries in headed.items():
        room = LABEL_CHARS - max(len(suffix) + reserve(i) for i, suffix in entries)
        name = shorten(section_name(units[entries[0][0]].leaf, limit=None), room)
        for i, suffix in entries:
            labels[i] = name + suffix
    for key, indices in members.items():
        if key[0] == "after" and len(indices) == 1:
            labels[indices[0]] = f"after {key[1]}"
    # Under a numbered heading with a single paragraph, that paragraph is the number itself ("2.2").
    for key, indices in members.items():
        if key[0] == "ctx" and len(indices) == 1 and counts[key] == 1 and units[indices[0]].context_from_heading:
            labels[indices[0]] = key[1]
    return labels


def fit(label: str) -> str:
    """A label cut to LABEL_CHARS (a repeat's " (2)" can push one over): words come off the
    heading name at its start ("How to Apply These Terms ¶3 (2)"), never off the number."""
    if len(label) <= LABEL_CHARS:
        return label
    split = re.search(r": | ¶| item | \(", label)
    if split and split.start() > 0:
        head, tail = label[:split.start()], label[split.start():]
        room = LABEL_CHARS - len(tail)
        if room >= 1:
            cut = shorten(head, room)
            if cut and len(cut) <= room:
                return cut + tail
            return tail.lstrip(": ")[:LABEL_CHARS]
    return label[:LABEL_CHARS].rstrip()


def section_name(heading: str, limit: int | None = _LABEL_SECTION_CHARS) -> str:
    """A heading as a label shows it: without its number, no commas or "and" (a citation
    marker is split at those), cut at a word to `limit` characters."""
    name = re.sub(r"^(?:§\s*)?\d{1,3}(?:\.\d{1,3})*[.)]?\s+", "", heading).strip(" .:")
    name = re.sub(r"\s*,\s*", " ", name).replace('"', "").replace("“", "").replace("”", "")
    name = re.sub(r"\band\b", "&", name)
    return name if limit is None else shorten(name, limit)


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit + 1].rsplit(" ", 1)[0] if " " in text[:limit + 1] else text[:limit]
    return cut.rstrip(" -–—:;,.")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
