"""Read documents (.txt, .md, .pdf, .docx, .html) and split them into labelled paragraphs.

Other formats are turned into text with the same conventions first (`qa.formats`: PDF pages
rebuilt from the text layer, Word and HTML headings as "#" lines, lists as "1." / "-" items),
so one set of rules serves every format. A paragraph is what a reader would call one: a block
between blank lines, or a unit that visibly starts on its own line (a numbered clause, a list
item). The rules, in the order they apply:

* Headings (Markdown "#" with their level, setext underlines, a framed or centred line, a bold
  line, a line in capitals, a short title line before body text, "2.1. Grants") are not
  paragraphs: they become the section (a path where levels are known). A heading's number is
  its clause number or the part it designates ("Exhibit A", "Chapter 9"). A heading run with a
  version, revision, author or copyright line is the title block: a paragraph labelled "title".
* The document's own numbering is the label: "¶12" when the document numbers its paragraphs
  (1., 2., 3. counting up; unnumbered ones before the first are "intro 1"...), clause numbers
  ("1.1", "§ 4"), items under them ("2.3(b)"), defined terms in a section of definitions
  ('Definitions: “Licensor”'), entries of a definition list ("OPTIONS: -k --keep"); the rules
  that name a paragraph are in `qa.labels`. Other paragraphs are counted under
  their heading ("Usage ¶2", "5 ¶2"; a numbered heading's only paragraph is the number itself),
  by page in a PDF without headings ("p. 3 ¶2"), else in the document ("¶2").
* A block that starts in lower case or with closing punctuation, or follows an unclosed
  parenthesis or a page break mid-sentence, continues the paragraph before it.
* Very short blocks that are not headings (a date, "Excellency,", a name) are joined to the
  paragraph that follows them, unless they are set deeper than it (an example) or lead into a
  list or a code block ("Included tools are:"): then they are a paragraph of their own.
* A letter's sign-off: after the complimentary close, the signer's name belongs to the
  signature, and the address block after the name is a paragraph of its own, in a section
  named "Recipients".
* A paragraph over MAX_PARAGRAPH_WORDS is cut at sentence ends ("¶4 part 2"), and one over
  MAX_PARAGRAPH_CHARS (words without spaces) at its last break before that.

Labels are at most 40 characters, without commas or "and" (citation markers are split
there), unique within a document. Ids are "<document id>#<label slug>" — the same on every
rebuild from the same file, and unique across documents because the document id is derived
from the file name (with a short hash of the path when two files share a name).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

from . import formats
from .errors import DocumentError
from .labels import RECIPIENTS_SECTION, fit, label_units
from .labels import Unit as _Unit

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")
# The longest paragraph kept whole. The bundled document's longest is 237 words; a longer
# "paragraph" is a page or a file without blank lines, and the embedder only reads its first
# 256 word pieces (~190 words) while the model's context fills up with it. Longer ones are cut
# at sentence ends into parts ("¶4", "¶4 part 2").
MAX_PARAGRAPH_WORDS = 300
# 300 words of prose are about 2,000 characters. A longer part is made of "words" that never
# end — a line of data, an encoded blob, a 2 MB line without a space — and would be one
# paragraph, and one sentence, of any length: cut at its last break before this, or hard.
MAX_PARAGRAPH_CHARS = 4_000
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # a bigger file is almost surely not a text document

_NUMBERED = re.compile(r"^\s*(\d{1,3})[.)]\s+(?=\S)")
# An ATX heading starts within three spaces of the margin (CommonMark); deeper, "# echo ..." is
# a root shell's prompt in a manual's example, not a heading.
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}\s+")
_ATX_INDENT = 3
_BOLD_LINE = re.compile(r"^\s*(\*\*|__)(.+?)(\*\*|__)\s*$", re.S)
_TERMINAL = ".!?:;,"
_FRAGMENT_WORDS = 6  # blocks shorter than this (not headings) are joined to the next one
_CLOSING = re.compile(
    r"^(?:yours\s+(?:sincerely|faithfully|truly|respectfully)|sincerely(?:\s+yours)?|respectfully(?:\s+yours)?"
    r"|(?:with\s+)?(?:best|kind|warm|warmest)\s+regards|regards)\s*,?$"
    r"|assurances?\s+of\s+my\s+(?:highest|high|most\s+distinguished)\s+consideration",
    re.IGNORECASE)
_ADDRESS_WORDS = 40  # an address block is short; a longer block is body text


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of one document, as stored in the index and cited in answers."""

    id: str  # stable: "<document id>#<label slug>"
    document: str  # file name as the user knows it
    label: str  # what a citation shows: "¶11", "intro 2"
    number: int | None  # the document's own paragraph number, if it has one
    section: str  # the heading above it ("" if none)
    text: str  # full text, without the leading number
    page: int | None = None  # the page it starts on (PDF), else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Paragraph":
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True)
class Document:
    """A source file and its paragraphs."""

    path: Path
    doc_id: str
    sha256: str
    paragraphs: list[Paragraph]
    warnings: tuple[str, ...] = ()  # what a person should know about how it was read


# --------------------------------------------------------------------------- reading


def read_pages(path: Path) -> list[tuple[int | None, str]]:
    """The text of a supported file as (page, text) pieces (one piece, page None, unless it
    is a PDF), or a DocumentError saying why there is none."""
    path = Path(path)
    if not path.exists():
        raise DocumentError(f"{path}: no such file")
    if path.is_dir():
        raise DocumentError(f"{path}: is a folder, not a document")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            f"{path.name}: unsupported file type '{suffix or '(none)'}' "
            f"(supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(f"{path.name}: the file is empty")
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"{path.name}: {size / 1e6:.0f} MB is over the {MAX_DOCUMENT_BYTES // 2**20} MiB limit"
        )
    data = path.read_bytes()
    if suffix == ".pdf":
        pages = formats.pdf_pages(path, data)
    elif suffix == ".docx":
        pages = [(None, formats.normalise_characters(formats.docx_text(path, data)))]
    elif suffix in (".html", ".htm"):
        pages = [(None, formats.normalise_characters(formats.html_text(path, data)))]
    else:
        pages = [(None, _drop_rendered_footer(formats.normalise_characters(_decode(path, data))))]
    if not any(text.strip() for _, text in pages):
        raise DocumentError(f"{path.name}: no text found in the document")
    return pages


def read_text(path: Path) -> str:
    """The text of a supported file, or a DocumentError saying why there is none."""
    return "\n\n".join(text for _, text in read_pages(path))


def _utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when the bytes look like UTF-16 text saved without a byte-order
    mark (every other byte zero: ASCII-range text), else None."""
    sample = data[:8192]
    if len(sample) < 4 or len(data) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.6 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.6 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _decode(path: Path, data: bytes) -> str:
    # UTF-16 with its byte-order mark, or without one when every other byte is zero: any
    # even-length bytes "decode" as UTF-16, so nothing else is taken for it.
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    encoding = "utf-16" if utf16 else _utf16_without_bom(data)
    if b"\x00" in data[:8192] and not encoding:
        raise DocumentError(f"{path.name}: looks like a binary file, not text")
    encoding = encoding or "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        if encoding.startswith("utf-16"):
            raise DocumentError(f"{path.name}: the text is not valid UTF-16; save it as UTF-8 and retry") from None
        raise DocumentError(f"{path.name}: the text is not valid UTF-8; save it as UTF-8 and retry") from None
    controls = sum(1 for ch in text[:8192] if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > 0.01 * min(len(text), 8192):
        raise DocumentError(f"{path.name}: looks like a binary file, not text")
    return text


# --------------------------------------------------------------------------- splitting

# A clause number: "1.", "12)", "1.1.", "4.2.1", "§ 4." (the "§" is kept in the label).
_CLAUSE = re.compile(r"^(?P<sect>§\s*)?(?P<num>\d{1,3}(?:\.\d{1,3})+\.?|\d{1,3}[.)])\s+(?=\S)")
_CLAUSE_SECT = re.compile(r"^§\s*(?P<num>\d{1,3}(?:\.\d{1,3})*)\.?\s+(?=\S)")
# A lettered or roman or bracketed-number item: "(a)", "b)", "(iv)", "(2)".
_ITEM = re.compile(r"^(?:\((?P<a>[a-z]{1,2}|[ivxlc]{1,5}|\d{1,2})\)|(?P<b>[a-z]|[ivx]{1,4})\))\s+(?=\S)")
_BULLET = re.compile(r"^[-*+•·‣◦▪]\s+(?=\S)")
_DECORATION = re.compile(r"^\s*([=\-*_~#+^])\1{2,}\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BARE_TAGS = re.compile(r"(?:\s*</?[a-z][a-z0-9]*\s*/?>)+\s*")
# A defined term: '"Licensor" means', 'A "covered work" means', 'To "modify" a work means'.
_DEFINITION = re.compile(
    r"^(?:[A-Za-z]+\s+){0,2}[\"“]([^\"”\n]{1,60})[\"”](?:\s*\([^)]{0,40}\))?[\s,]+(?:[\w-]+\s+){0,8}?"
    r"(?:means?|refers?\s+to|shall\s+mean|is\s+defined|includes?|has\s+the\s+meaning)\b")
# A heading run with one of these words is the document's title block (a version line, a
# revision date, an author, a copyright): it stays a paragraph so that it can be cited.
_TITLE_WORDS = re.compile(r"\b(?:version|revised|revision|edition|release[sd]?|written\s+by|authors?)\b"
                          r"|\bcopyright\s+(?:©|\(c\)|\d{4})"
                          r"|\bv\d|©|\(c\)", re.IGNORECASE)
_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”')\]]))\s+(?=[A-Z0-9\"“(\[])")
_CENTRED = 10  # a line indented this far is centred (a title), not the term of an entry
_CENTRE_SLACK = 12  # ... when its two margins differ by at most this many columns


@dataclass
class _Block:
    text: str
    kind: str = "body"  # body, heading, fragment, numbered, clause, item, listnum, definition, entry, bullet, code
    number: int | None = None  # the document's own paragraph number ("12." -> 12)
    marker: str = ""  # a clause number "1.1", "§ 4", an item letter "a", a list number "2"
    term: str = ""  # a defined term or an entry's name
    level: int | None = None  # a heading's level where the format says it (Markdown, HTML, Word)
    page: int | None = None
    indent: int = 0
    lines: list[str] | None = None
    title: bool = False
    first_on_page: bool = False


def _split_chunk(chunk: str) -> list[str]:
    """A blank-line block cut where a new unit visibly starts on its own line."""
    lines = chunk.split("\n")
    pieces: list[list[str]] = [[]]
    bullets = sum(1 for line in lines if _BULLET.match(line.strip()))
    for n, line in enumerate(lines):
        stripped = line.strip()
        starts = False
        ends_sentence = bool(pieces[-1]) and pieces[-1][-1].rstrip()[-1:] in ".!?:;"
        if pieces[-1]:
            if ends_sentence and re.match(r"\d{1,3}(?:\.\d{1,3})*[.)]\s+[A-Z\"“]|\d{1,3}(?:\.\d{1,3})+\s+[A-Z\"“]", stripped):
                starts = True  # a numbered paragraph starting on its own line (common in PDF text)
            elif bullets >= 2 and _BULLET.match(stripped):
                starts = True  # a Markdown list without blank lines between its items
            elif _MD_HEADING.match(line) and not _FENCE.match(pieces[-1][0]):
                starts = True
        if starts:
            pieces.append([])
        pieces[-1].append(line)
        if _DECORATION.match(line) and n + 1 < len(lines) and len(pieces[-1]) > 1:
            pieces.append([])  # text right under a setext underline is a new block
    return ["\n".join(p) for p in pieces if any(s.strip() for s in p)]


_FRAMED = re.compile(r"^\s*([*|#])(.*)\1\s*$")


def _unframe(text: str) -> str:
    """Text in a box of "*" or "|" characters (a disclaimer set apart in a licence) is read
    without its frame: three or more framed lines in a row lose their border characters."""
    lines = text.split("\n")
    framed = [bool(_FRAMED.match(line)) and len(line.strip()) > 2 for line in lines]
    out = list(lines)
    n = 0
    while n < len(lines):
        if not framed[n]:
            n += 1
            continue
        end = n
        while end < len(lines) and framed[end]:
            end += 1
        if end - n >= 3:
            for k in range(n, end):
                out[k] = _FRAMED.match(lines[k]).group(2).rstrip()
        n = end
    return "\n".join(out)


def _caps_line(line: str) -> bool:
    # As many words as a heading in capitals may have ("THE DEB AND DEB-SRC TYPES: GENERAL
    # FORMAT" is seven), and no sentence's end.
    letters = [ch for ch in line if ch.isalpha()]
    return (len(letters) >= 2 and all(ch.isupper() for ch in letters) and len(line.split()) <= 12
            and line.rstrip()[-1:] not in _TERMINAL)


def _split_heading_line(pieces: list[str]) -> list[str]:
    """ "DESCRIPTION" over its indented text (a manual page's layout): the capitals line is a
    heading block of its own."""
    out = []
    for piece in pieces:
        lines = piece.split("\n")
        filled = [line.expandtabs(8) for line in lines if line.strip()]
        if len(filled) >= 2 and _caps_line(filled[0]):
            indent = len(filled[0]) - len(filled[0].lstrip())
            if all(len(line) - len(line.lstrip()) > indent for line in filled[1:]):
                out.extend([lines[0], "\n".join(lines[1:])])
                continue
        out.append(piece)
    return out


def _drop_rendered_footer(text: str) -> str:
    """A page rendered to text (a manual page) ends with a footer that repeats its running
    title ("GZIP(1)  General Commands Manual  GZIP(1)" ... "local  GZIP(1)"): dropped."""
    lines = text.rstrip().split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if len(filled) < 3:
        return text
    first, last = lines[filled[0]], lines[filled[-1]]
    marks = {w for w in first.split() if re.search(r"[A-Za-z]", w) and re.search(r"[(\d]", w)}
    if len(last.split()) <= 6 and marks & set(last.split()):
        return "\n".join(lines[:filled[-1]])
    return text


def _blocks(pages: list[tuple[int | None, str]]) -> list[_Block]:
    blocks = []
    for page, text in pages:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
        if "*" in text or "|" in text:
            text = _unframe(text)
        chunks, current, fenced = [], [], False
        for line in text.split("\n"):
            if _FENCE.match(line):
                fenced = not fenced
            if not line.strip() and not fenced:
                if current:
                    chunks.append("\n".join(current))
                current = [] if not line.strip() and not fenced else current
                continue
            current.append(line)
        if current:
            chunks.append("\n".join(current))
        first = True
        for chunk in chunks:
            for piece in _split_heading_line(_split_chunk(chunk)):
                raw = [line.rstrip() for line in piece.split("\n")]
                while raw and not raw[0].strip():
                    raw.pop(0)
                indent = len(raw[0]) - len(raw[0].lstrip()) if raw else 0
                blocks.append(_Block(piece.strip(), page=page, indent=indent, lines=raw, first_on_page=first))
                first = False
    return blocks


def _line_width(blocks: list[_Block]) -> int:
    """The width a full line of the document has (most lines of a paragraph run to it): a line
    is centred when it is about as far from that edge as from the left one."""
    lengths = sorted(len(line.rstrip()) for b in blocks for line in (b.lines or []) if line.strip())
    return lengths[int(len(lengths) * 0.9)] if lengths else 80


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _looks_like_heading(block: _Block, next_block: _Block | None, width: int) -> bool:
    text = block.text
    if (_MD_HEADING.match(text) and block.indent <= _ATX_INDENT) or _BOLD_LINE.match(text):
        return True
    flat = _flat(text)
    words = flat.split()
    if not words or _NUMBERED.match(text) or flat[-1] in _TERMINAL:
        return False
    letters = [ch for ch in flat if ch.isalpha()]
    if len(words) <= 12 and len(letters) >= 2 and all(ch.isupper() for ch in letters):
        return True  # A LINE IN CAPITALS
    centred = 2 * block.indent + len(flat) >= width - _CENTRE_SLACK
    if block.indent >= _CENTRED and centred and "\n" not in block.text and len(words) <= 12 and flat[0].isupper():
        return True  # a short line set in the middle of the page: a title (not an example set
        # deeper than the text, as a manual page sets "Pin: release a=stable")
    if len(words) > 8 or not flat[0].isupper():
        return False
    # A short title line counts as a heading only when body text or another heading follows.
    # Lines that start at one column and are three or more ("Package: perl" / "Pin: version
    # 5.32*" / "Pin-Priority: 1001"), or set deeper than the text after them, are a record or
    # an example: a manual page indents its examples, not its headings. (A centred title's
    # lines start at different columns: "Apache License" / "Version 2.0, January 2004".)
    if next_block is None:
        return False
    lines = [line for line in (block.lines or [text]) if line.strip()]
    aligned = len({len(line) - len(line.lstrip()) for line in lines}) == 1
    if aligned and (len(lines) > 2 or block.indent > next_block.indent):
        return False
    nxt = _flat(next_block.text)
    return bool(
        _NUMBERED.match(next_block.text)
        or (_MD_HEADING.match(next_block.text) and next_block.indent <= _ATX_INDENT)
        or _BOLD_LINE.match(next_block.text)
        or len(nxt.split()) >= 20
        or (nxt and all(ch.isupper() for ch in nxt if ch.isalpha()) and len(nxt.split()) <= 12)
    )


def _is_numbered_heading(rest: str, lines: list[str]) -> bool:
    """ "2.1. Grants", "0. Definitions.", "10.4. Distributing Source Code Form that is ...":
    a short title after a number, without a sentence inside it."""
    flat = _flat(rest)
    words = flat.split()
    if not words or len(words) > 12 or len([l for l in lines if l.strip()]) > 2:
        return False
    if flat[-1] in ",;:" or re.search(r"[.!?;:]\s", flat) or flat.count(",") > 1:
        return False
    if not (flat[0].isupper() or flat[0] in "\"“'"):
        return False
    long_words = [w for w in words if len(w.strip("\"“”'.,")) >= 4]
    title_case = sum(1 for w in long_words if w.strip("\"“'")[:1].isupper()) >= 0.5 * len(long_words)
    return title_case or (len(words) <= 6 and flat[-1] != ".")


def _classify(block: _Block, next_block: _Block | None, width: int) -> None:
    lines = [line for line in (block.lines or [block.text])]
    body_lines = [line for line in lines if line.strip()]
    if _FENCE.match(block.text) and len(body_lines) > 1:
        block.kind = "code"  # its closing "~~~" is a fence, not a setext underline
        return
    # Decoration: a setext underline ("Title" / "=====") or a frame of rules (*** / Title / ***).
    if all(_DECORATION.match(line) for line in body_lines):
        block.kind = "rule"
        return
    if len(body_lines) >= 2 and _DECORATION.match(body_lines[-1]):
        underline = body_lines[-1].strip()[0]
        inner = [line for line in body_lines[:-1] if not _DECORATION.match(line)]
        block.text = _flat("\n".join(inner))
        block.lines = inner
        if underline in "=-" and not _DECORATION.match(body_lines[0]):
            block.level = 1 if underline == "=" else 2
        block.kind = "heading"
        _number_heading(block)
        return
    if any(_DECORATION.match(line) for line in body_lines):
        inner = [line for line in body_lines if not _DECORATION.match(line)]
        block.text, block.lines = "\n".join(line.strip() for line in inner), inner
    text = block.text
    if _FENCE.match(text):
        block.kind = "code"
        return
    heading = _MD_HEADING.match(text) if block.indent <= _ATX_INDENT else None
    if heading:
        block.level = len(text.strip().split()[0])
        block.text = _flat(text[heading.end():])
        block.kind = "heading"
        _number_heading(block)
        return
    clause = _CLAUSE.match(text) or _CLAUSE_SECT.match(text)
    if clause:
        number = clause.group("num").rstrip(".)")
        rest = text[clause.end():]
        sect = "§ " if text.startswith("§") else ""
        definition = _DEFINITION.match(rest)
        next_clause = next_block is not None and (_CLAUSE.match(next_block.text) or _CLAUSE_SECT.match(next_block.text))
        same_depth = next_clause and next_clause.group("num").rstrip(".)").count(".") == number.count(".")
        if not definition and _is_numbered_heading(rest, lines) and next_block is not None and not same_depth:
            block.kind, block.marker, block.text = "heading", sect + number, _flat(text)
            return
        block.text = rest
        if "." in number or sect:
            block.kind, block.marker = "clause", sect + number
        else:
            block.kind, block.number = "numbered", int(number)
        if definition:
            block.term = definition.group(1).strip()
        return
    item = _ITEM.match(text)
    if item:
        block.kind, block.marker, block.text = "item", item.group("a") or item.group("b"), text[item.end():]
        return
    if _BOLD_LINE.match(text):
        block.kind = "heading"
        return
    definition = _DEFINITION.match(text)
    if definition:
        block.kind, block.term = "definition", definition.group(1).strip()
        return
    if _BULLET.match(text):
        block.kind, block.text = "bullet", _BULLET.sub("", text, count=1)
        return
    if _is_entry(lines):
        block.kind, block.term = "entry", _flat(body_lines[0])
        return
    if _looks_like_heading(block, next_block, width):
        block.kind = "heading"
        _number_heading(block)
    elif len(_flat(text).split()) < _FRAGMENT_WORDS:
        block.kind = "fragment"


def _is_entry(lines: list[str]) -> bool:
    """A term on its own line with its description indented under it ("-k --keep" /
    "    Keep input files ..."): an entry of a definition list (options, glossaries)."""
    filled = [line.expandtabs(8) for line in lines if line.strip()]
    if len(filled) < 2:
        return False
    first = filled[0]
    indent = len(first) - len(first.lstrip())
    words = first.split()
    if indent >= _CENTRED or len(words) > 12 or first.rstrip()[-1] in ";,":
        return False
    return all(len(line) - len(line.lstrip()) > indent for line in filled[1:])


# A heading that designates a part of the document by a word and a number or letter:
# "Exhibit A - Source Code Form License Notice", "Chapter 9. Keeping your system up-to-date",
# "Appendix B", "Schedule 2: Fees", "Part IV". That designation is how a reader cites the part
# (and what the document's cross-references say: "the notice described in Exhibit A"), so it
# is the heading's number. A lone capital letter needs punctuation or the end of the heading
# after it, since "Appendix A Guide to ..." may be the article "A".
_DESIGNATION = re.compile(
    r"^(?P<num>(?i:appendix|annex|exhibit|schedule|attachment|chapter|part|article|section)\s+"
    r"(?:(?:\d{1,3}(?:\.\d{1,3})*|[IVXLC]{1,6})(?=[.:)]?\s|[.:)]?$|\s*[-–—])|[A-Z](?=[.:)]\s|[.:)]?$|\s+[-–—]\s)))")


def _number_heading(block: _Block) -> None:
    match = _CLAUSE.match(block.text) or _CLAUSE_SECT.match(block.text)
    if match:
        block.marker = ("§ " if block.text.startswith("§") else "") + match.group("num").rstrip(".)")
        return
    designation = _DESIGNATION.match(_heading_text(block.text))
    if designation:
        block.marker = re.sub(r"\s+", " ", designation.group("num"))


def _mark_sign_off(blocks: list[_Block]) -> None:
    """Mark a letter's signer ("signature") and address block ("recipients").

    After a complimentary close come signature lines, the signer's name (a short fragment)
    and, in UN-style letters, the recipients' address block. Without this the name would
    be joined to the address block that follows it, and "To whom is the letter addressed?"
    would have no paragraph that says so."""
    for i, block in enumerate(blocks):
        if block.kind not in ("body", "fragment") or not _CLOSING.search(_flat(block.text)):
            continue
        end = i + 1
        while end < len(blocks) and blocks[end].kind in ("body", "fragment"):
            end += 1
        sign_off = blocks[i + 1:end]
        names = [n for n, b in enumerate(sign_off) if b.kind == "fragment"]
        if not names:
            continue
        for b in sign_off[:names[0] + 1]:
            if b.kind == "fragment":
                b.kind = "signature"
        for b in sign_off[names[0] + 1:]:
            flat = _flat(b.text)
            if flat[-1] in ".!?" or len(flat.split()) > _ADDRESS_WORDS:
                break  # a sentence: the letter goes on, this is no address
            b.kind = "recipients"


_LIST_KINDS = ("bullet", "item", "listnum", "code")


def _mark_lead_ins(blocks: list[_Block]) -> None:
    """A short line that ends with a colon right before a list or an example ("Included tools
    are:", "Run this:") introduces all of it, not its first item: it is a paragraph of its own,
    as a longer lead-in already is, instead of a fragment joined to the first item. So the
    items keep the count a reader sees (the lead-in, then one paragraph per item)."""
    for block, following in pairwise(blocks):
        if block.kind == "fragment" and _flat(block.text).endswith(":") and following.kind in _LIST_KINDS:
            block.kind = "body"


def _heading_text(text: str) -> str:
    text = _MD_HEADING.sub("", text)
    match = _BOLD_LINE.match(text)
    if match:
        text = match.group(2)
    return _flat(_strip_markdown(text)).strip("*_ ")


def _documents_numbering(blocks: list[_Block]) -> bool:
    """Does the document number its paragraphs (1., 2., 3. ... through the document, as the
    bundled summary does), rather than only some lists? Then every numbered block is ¶N and
    unnumbered ones before the first are "intro 1", "intro 2"..."""
    numbers = [b.number for b in blocks if b.kind == "numbered"]
    if len(numbers) < 2:
        return False
    lengths = sorted(len(_flat(b.text).split()) for b in blocks if b.kind == "numbered")
    increasing = all(b > a for a, b in zip(numbers, numbers[1:]))
    return increasing and lengths[len(lengths) // 2] >= 12


def split_paragraphs(text: str, document: str, doc_id: str,
                     pages: list[tuple[int | None, str]] | None = None) -> list[Paragraph]:
    """Split a document's text into paragraphs (see the module docstring for the rules).
    `pages` (PDF): the text page by page, so that each paragraph knows its page."""
    blocks = _blocks(pages if pages is not None else [(None, text)])
    width = _line_width(blocks)
    for i, block in enumerate(blocks):
        _classify(block, blocks[i + 1] if i + 1 < len(blocks) else None, width)
    # A block that is only bare HTML tags ("<details>", "</details>" around a Markdown
    # section) says nothing a reader sees.
    blocks = [b for b in blocks if b.kind != "rule" and b.text.strip() and not _BARE_TAGS.fullmatch(b.text)]
    for previous, block in zip(blocks, blocks[1:]):
        # "2. Take the device out." right after the item "1. Open the box.": the last item of a
        # list, not a heading (a heading follows its section's text, not a sibling item).
        if block.kind == "heading" and block.marker and previous.kind in ("numbered", "listnum") \
                and "." not in block.marker and block.marker.isdigit() and previous.number == int(block.marker) - 1:
            match = _CLAUSE.match(block.text)
            block.kind, block.number, block.marker, block.text = "numbered", int(match.group("num").rstrip(".)")), "", block.text[match.end():]
    numbered_doc = _documents_numbering(blocks)
    if not numbered_doc:
        for b in blocks:
            if b.kind == "numbered":  # a list that counts its items, not the document's paragraphs
                b.kind, b.marker, b.number = "listnum", str(b.number), None

    _mark_sign_off(blocks)
    _mark_lead_ins(blocks)

    # Fragments right before a heading belong to the heading run (e.g. a place and date line
    # under a title); others are joined to the paragraph that follows them. Not one set deeper
    # than that heading, nor a sentence: it is the text of the section above ("AUTHORS" /
    # "   Jason Gunthorpe" / "NOTES" in a manual page; "See CHANGELOG.md." under "Version
    # History").
    for i in range(len(blocks) - 2, -1, -1):
        if blocks[i].kind == "fragment" and blocks[i + 1].kind == "heading" and not re.match(r"[a-z]\S*\s", blocks[i].text) \
                and blocks[i].indent <= blocks[i + 1].indent and blocks[i].text.rstrip()[-1:] not in ".!?":
            blocks[i].kind = "heading"

    # A heading run with a version, revision, author or copyright line is a title block, where
    # a title is: before the document's first paragraph of prose. (Later, "AUTHORS" is a
    # section like any other.)
    i = 0
    while i < len(blocks):
        if blocks[i].kind != "heading" or blocks[i].marker:  # "14. Revised Versions": a section, not a title
            if blocks[i].kind != "heading" and len(_flat(blocks[i].text).split()) >= 20:
                break
            i += 1
            continue
        j = i
        while j < len(blocks) and blocks[j].kind == "heading" and not (j > i and (
                blocks[j].marker or (blocks[j].level is not None and blocks[i].level is not None
                                     and blocks[j].level <= blocks[i].level))):
            j += 1  # a numbered heading ("1. Definitions"), or one at the title's level, starts the body
        if any(_TITLE_WORDS.search(_heading_text(b.text)) for b in blocks[i:j]):
            for b in blocks[i:j]:
                b.title = True
        i = j

    units: list[_Unit] = []
    pending: list[str] = []  # fragments waiting for the next body paragraph
    pending_page: int | None = None
    pending_indent = 0
    stack: list[tuple[int, str]] = []  # explicit heading levels (Markdown, HTML, Word): a path
    plain = ""  # the latest heading without a level (plain text)
    leaf = ""
    context, from_heading = "", False
    title_parts: list[str] = []
    entry: tuple[str, int] | None = None  # (term, indent) of the entry whose paragraphs follow
    heading_since = False
    bullet_run = False

    def section_path() -> str:
        path = [name for _, name in stack] + ([plain] if plain else [])
        return " > ".join(path)

    def add(text, kind="body", number=None, marker="", term="", page=None, entry_label=""):
        units.append(_Unit(text, kind, number, marker, term, section_path(), leaf, context, from_heading,
                           page, entry_label))

    def flush_pending():
        nonlocal pending
        if pending:
            add(" ".join(pending), page=pending_page)
            pending = []

    def flush_title():
        nonlocal title_parts
        if title_parts:
            units.append(_Unit(" ".join(title_parts), "title", None, "", "", "", "", "", False, title_page))
            title_parts = []

    title_page = None
    for n, block in enumerate(blocks):
        if block.kind == "heading":
            if pending:  # short text closing a section stays in that section
                flush_pending()
            name = _heading_text(block.text)
            if block.title:
                if not title_parts:
                    title_page = block.page
                title_parts.append(name)
                continue
            flush_title()
            if block.level is not None:
                stack = [(lvl, nm) for lvl, nm in stack if lvl < block.level] + [(block.level, name)]
                plain = ""
            else:
                plain = name
            leaf = name
            context, from_heading = (block.marker, True) if block.marker else ("", False)
            entry, heading_since, bullet_run = None, True, False
            continue
        flush_title()
        flat = _flat(block.text)
        if block.kind == "signature" and units and not pending:
            units[-1].text = units[-1].text + " " + flat  # the signer's name closes the letter
            continue
        if block.kind == "recipients":
            flush_pending()
            units.append(_Unit(flat, "body", None, "", "", RECIPIENTS_SECTION, RECIPIENTS_SECTION, context,
                               from_heading, block.page))
            continue
        previous = units[-1] if units and not pending else None
        open_end = previous is not None and previous.kind != "title" and (
            previous.text.rstrip()[-1:] not in ".!?:" or previous.text.count("(") > previous.text.count(")"))
        if block.kind in ("body", "fragment") and open_end and not heading_since:
            cut_by_page = block.first_on_page and block.page is not None and previous.page != block.page
            # "... and" / "calling", "), and the results", or an example set off inside a
            # parenthesis "(e.g." that the next blocks close.
            unclosed = previous.text.count("(") > previous.text.count(")")
            continues = flat[:1].islower() or flat[:1] in ",;.)]" or unclosed
            if continues or cut_by_page:
                previous.text = previous.text + " " + flat  # a page break cut this paragraph
                continue
        if entry and block.kind in ("body", "fragment", "bullet", "code") and block.indent > entry[1]:
            flush_pending()
            add(flat if block.kind != "code" else block.text, "entrypart", page=block.page, entry_label=entry[0])
            heading_since = False
            continue
        if block.kind == "fragment":
            if not pending:
                pending_page, pending_indent = block.page, block.indent
            pending_indent = max(pending_indent, block.indent)
            pending.append(flat)
            continue
        if pending and (pending_indent > block.indent or block.kind == "code"):
            # Short lines set deeper than the text after them (an example) stand alone; so do
            # those before a code block, which keeps its own text verbatim.
            flush_pending()
        if block.kind == "bullet" and len(flat.split()) < _FRAGMENT_WORDS and bullet_run and units and not pending:
            units[-1].text += "; " + flat  # a list of short items is one paragraph
            continue
        bullet_run = block.kind == "bullet"
        page = block.page
        if pending:
            flat = " ".join(pending + [flat])
            page = pending_page
            pending = []
        entry = None
        if block.kind == "entry":
            entry = (block.term, block.indent)
        if block.kind in ("numbered", "clause") and from_heading and context:
            # "2. Grant ..." after the heading "1. Definitions.": a number at the heading's
            # depth ends that heading's section.
            number = block.marker if block.kind == "clause" else str(block.number)
            if number.count(".") == context.count(".") and re.fullmatch(r"[\d.]+", context):
                # (not under "§ 4" or "Appendix B": their numbers are of another series)
                if stack and stack[-1][1] == leaf and not plain:
                    stack.pop()
                elif plain == leaf:
                    plain = ""
                leaf = plain or (stack[-1][1] if stack else "")
        if block.kind == "numbered":
            context, from_heading = f"¶{block.number}", False
        elif block.kind == "clause":
            context, from_heading = block.marker, False
        add(block.text if block.kind == "code" else flat, block.kind, block.number, block.marker, block.term, page,
            entry_label=block.term if block.kind == "entry" else "")
        heading_since = False
    flush_title()
    if pending:  # fragments at the very end join the last paragraph of their section
        if units and units[-1].section == section_path():
            units[-1].text += " " + " ".join(pending)
        else:
            flush_pending()

    pieces = [_cap(unit.text if unit.kind == "code" else _flat(_strip_markdown(unit.text))) for unit in units]
    labels = label_units(units, numbered_doc, [len(p) for p in pieces])
    paragraphs: list[Paragraph] = []
    seen_labels: set[str] = set()
    seen_slugs: set[str] = set()
    for unit, label, unit_pieces in zip(units, labels, pieces):
        for part, piece in enumerate(unit_pieces, 1):
            name = label if part == 1 else f"{label} part {part}"
            base, suffix = name, 2
            while name in seen_labels or _slug(name) in seen_slugs:  # a document that numbers twice
                name = fit(f"{base} ({suffix})")
                suffix += 1
            seen_labels.add(name)
            seen_slugs.add(_slug(name))
            paragraphs.append(Paragraph(
                id=f"{doc_id}#{_slug(name)}", document=document, label=name, number=unit.number,
                section=unit.section, text=piece, page=unit.page))
    return paragraphs


def _cap(text: str) -> list[str]:
    """A paragraph longer than MAX_PARAGRAPH_WORDS, cut at sentence ends into parts under it
    (and a sentence longer than that at word boundaries); then any part still longer than
    MAX_PARAGRAPH_CHARS (words that never end) at its last break, or hard."""
    return [piece for part in _cap_words(text) for piece in _cap_chars(part)]


def _cap_chars(text: str) -> list[str]:
    pieces = []
    while len(text) > MAX_PARAGRAPH_CHARS:
        window = text[:MAX_PARAGRAPH_CHARS]
        # The last space or punctuation in the window's second half, else a hard cut.
        breaks = [m.end() for m in re.finditer(r"[\s,;:/|.-]+", window[MAX_PARAGRAPH_CHARS // 2:])]
        end = MAX_PARAGRAPH_CHARS // 2 + breaks[-1] if breaks else MAX_PARAGRAPH_CHARS
        pieces.append(text[:end].strip())
        text = text[end:].strip()
    return pieces + ([text] if text else [])


def _cap_words(text: str) -> list[str]:
    words = text.split()
    if len(words) <= MAX_PARAGRAPH_WORDS:
        return [text]
    sentences = [s for s in _SENTENCE_BREAK.split(text) if s and s.strip()]
    parts: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        sentence_words = sentence.split()
        while len(sentence_words) > MAX_PARAGRAPH_WORDS:
            if current:
                parts.append(" ".join(current))
                current = []
            parts.append(" ".join(sentence_words[:MAX_PARAGRAPH_WORDS]))
            sentence_words = sentence_words[MAX_PARAGRAPH_WORDS:]
        if current and len(current) + len(sentence_words) > MAX_PARAGRAPH_WORDS:
            parts.append(" ".join(current))
            current = []
        current.extend(sentence_words)
    if current:
        parts.append(" ".join(current))
    return parts


def _strip_markdown(text: str) -> str:
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)  # images: their alt text
    text = re.sub(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)", r"\1", text)  # links: their text
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    return re.sub(r"`([^`]+)`", r"\1", text)


def _slug(text: str) -> str:
    text = text.replace("¶", "")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "p"


# --------------------------------------------------------------------------- documents


def document_id(path: Path, taken: set[str] | None = None) -> str:
    """A readable id from the file name, with a short path hash if the name is taken."""
    base = _slug(Path(path).stem)
    if taken is None or base not in taken:
        return base
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:6]
    return f"{base}-{digest}"


def load_document(path: Path, doc_id: str | None = None) -> Document:
    """Read and split one file. Raises DocumentError for anything unusable."""
    path = Path(path)
    pages = read_pages(path)
    doc_id = doc_id or document_id(path)
    if len(pages) == 1 and pages[0][0] is None:
        paragraphs = split_paragraphs(pages[0][1], path.name, doc_id)
    else:
        paragraphs = split_paragraphs("", path.name, doc_id, pages=pages)
    if not paragraphs:
        raise DocumentError(f"{path.name}: no paragraphs found in the document")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Document(path=path, doc_id=doc_id, sha256=sha, paragraphs=paragraphs, warnings=long_line_warnings(path, pages))


# A line this long is no line a person wrote: a minified file, a data dump, a text whose line
# ends were lost. It is still indexed (cut into parts), but its citations point at parts of
# one huge block, so the person indexing it is told.
LONG_LINE_CHARS = 10_000


def long_line_warnings(path: Path, pages: list[tuple[int | None, str]]) -> tuple[str, ...]:
    longest, where = 0, None
    for page, text in pages:
        for number, line in enumerate(text.split("\n"), 1):
            if len(line) > longest:
                longest, where = len(line), (page, number)
    if longest <= LONG_LINE_CHARS:
        return ()
    page, number = where
    place = f"page {page}" if page is not None else f"line {number}"
    return (f"{path.name}: {place} is {longest:,} characters long without a line break; it was cut into "
            f"paragraphs of at most {MAX_PARAGRAPH_CHARS:,} characters, so its citations point at parts of it",)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files named directly, plus the supported files inside named folders (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file())
            if not found:
                raise DocumentError(f"{path}: no {', '.join(SUPPORTED_SUFFIXES)} files in this folder")
            files.extend(found)
        elif not path.exists():
            raise DocumentError(f"{path}: no such file or folder")
        else:
            files.append(path)
    return files


def load_documents(paths: list[Path]) -> list[Document]:
    """Load several files with ids that never collide. All-or-nothing: one bad file stops it."""
    documents: list[Document] = []
    taken: set[str] = set()
    for path in expand_paths(paths):
        doc_id = document_id(path, taken)
        taken.add(doc_id)
        documents.append(load_document(path, doc_id))
    return documents


def document_names(paragraphs) -> dict[str, str]:
    """Document file name -> the words that name the document itself: its file name's words,
    the name in its title paragraph (up to a version, date or comma) and that name's
    initials ("mpl-2.0.txt", "Mozilla Public License Version 2.0" -> "mpl Mozilla Public
    License MPL").

    A reader names the whole document in a question ("Who maintains the MPL?"): those words
    are true of every paragraph of it, not evidence for the one paragraph that repeats them.
    """
    names: dict[str, str] = {}
    titled: set[str] = set()
    for p in paragraphs:
        stem_words = re.sub(r"[-_.]+", " ", Path(p.document).stem).split()
        names.setdefault(p.document, " ".join(w for w in stem_words if not w.isdigit()))
        if p.label == "title" and p.document not in titled:
            titled.add(p.document)
            first = p.text.strip().split("\n")[0]
            name = re.split(r"\s+(?:version|v\.?)\s|[,;:(\d]", first, maxsplit=1, flags=re.IGNORECASE)[0].strip()
            words = name.split()[:8]
            initials = "".join(w[0] for w in words if w[:1].isupper())
            names[p.document] += " " + " ".join(words) + (f" {initials}" if len(initials) >= 2 else "")
    return names
