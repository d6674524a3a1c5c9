"""Readers for the formats that are not plain text: PDF, Word (.docx) and HTML.

Each reader returns the document's text in the plain-text conventions the splitter in
`qa.documents` reads — blank lines between paragraphs, "#" headings with their level, "1." and
"-" list items — so one set of paragraph and label rules serves every format.

PDF (pypdf's layout mode, which keeps the text layer's vertical gaps as blank lines and each
line's indentation):

* running headers and footers are removed: a line among the first or last two of a page that
  repeats on at least half of the pages (digits counted as equal: "Page 2 of 10" and "Page 3
  of 10" are one line), and lone page numbers ("7", "- 7 -", "Page 7", "7 of 10");
* a word hyphenated across two lines ("distri-" / "bution") is joined;
* ligatures and compatibility characters are normalised (NFKC: "ﬂ" -> "fl") and typeset
  minus and hyphen characters become "-" (see `normalise_characters`);
* each page keeps its number, so every paragraph can say where it starts.

Multi-column pages are read line by line across the columns (pypdf does not separate them).
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

from .errors import DocumentError

# Characters a typesetter uses for a hyphen or a minus, and the soft hyphen that only marks a
# possible break: all are a plain "-" (or nothing) to a reader and to a search.
_DASHES = {"\u2010": "-", "\u2011": "-", "\u2212": "-", "\u2043": "-", "\ufe63": "-", "\uff0d": "-", "\u00ad": ""}


def normalise_characters(text: str) -> str:
    """NFKC (ligatures, full-width and non-breaking characters) and one kind of hyphen."""
    text = unicodedata.normalize("NFKC", text)
    return text.translate(str.maketrans(_DASHES))


# --------------------------------------------------------------------------- PDF

_PAGE_NUMBER = re.compile(
    r"^(?:page\s+)?(?:\d{1,4}|[ivxlcdm]{1,6})(?:\s*(?:of|/)\s*\d{1,4})?$|^[-–—]\s*\d{1,4}\s*[-–—]$", re.IGNORECASE)
_EDGE_LINES = 2  # a running header or footer is among the first or last two lines of a page


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", line.strip().lower()))


def pdf_pages(path: Path, data: bytes) -> list[tuple[int, str]]:
    """(page number, text) for each page with text, as the splitter reads them."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PdfStreamError

    try:
        reader = PdfReader(io.BytesIO(data))
        raw = []
        for page in reader.pages:
            try:
                raw.append(page.extract_text(extraction_mode="layout") or "")
            except (ZeroDivisionError, IndexError, TypeError, AttributeError):
                raw.append(page.extract_text() or "")  # layout mode fails on a few odd fonts
    except (PdfReadError, PdfStreamError, ValueError, KeyError, OSError) as error:
        raise DocumentError(f"{Path(path).name}: not a readable PDF ({error})".replace("\n", " ")) from None
    pages = [[line.rstrip() for line in normalise_characters(text).splitlines()] for text in raw]
    pages = _drop_running_lines(pages)
    out = []
    for number, lines in enumerate(pages, 1):
        lines = _dedent(_join_hyphenated(lines))
        text = "\n".join(lines).strip("\n")
        if text.strip():
            out.append((number, text))
    _join_hyphen_across_pages(out)
    return out


def _edges(lines: list[str]) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return sorted(set(filled[:_EDGE_LINES] + filled[-_EDGE_LINES:]))


def _drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    counts: dict[str, int] = {}
    for lines in pages:
        for key in {_line_key(lines[i]) for i in _edges(lines)}:
            counts[key] = counts.get(key, 0) + 1
    needed = max(2, math.ceil(0.5 * len(pages)))
    cleaned = []
    for lines in pages:
        drop = {i for i in _edges(lines)
                if counts.get(_line_key(lines[i]), 0) >= needed or _PAGE_NUMBER.match(lines[i].strip())}
        cleaned.append([line for i, line in enumerate(lines) if i not in drop])
    return cleaned


_HYPHEN_END = re.compile(r"(?<=[^\W\d_])-$")


def _join_hyphenated(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if out and _HYPHEN_END.search(out[-1]) and line.strip()[:1].islower():
            out[-1] = out[-1][:-1] + line.strip()
        else:
            out.append(line)
    return out


def _join_hyphen_across_pages(pages: list[tuple[int, str]]) -> None:
    for i in range(len(pages) - 1):
        number, text = pages[i]
        if _HYPHEN_END.search(text) and pages[i + 1][1].strip()[:1].islower():
            following = pages[i + 1][1].lstrip()
            word, _, rest = following.partition("\n")
            head, _, tail = word.partition(" ")
            pages[i] = (number, text[:-1] + head)
            pages[i + 1] = (pages[i + 1][0], (tail + "\n" + rest).strip("\n") if tail else rest)


def _dedent(lines: list[str]) -> list[str]:
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return [line[cut:] if line.strip() else "" for line in lines]


# --------------------------------------------------------------------------- Word

def docx_text(path: Path, data: bytes) -> str:
    """Headings as "#" lines, numbered and bulleted paragraphs as list items, tables as rows."""
    try:
        import docx  # python-docx
        from docx.opc.exceptions import PackageNotFoundError
    except ImportError:  # pragma: no cover - a dependency of the package
        raise DocumentError(f"{Path(path).name}: reading .docx needs python-docx (pip install python-docx)") from None
    import zipfile

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise DocumentError(f"{Path(path).name}: not a readable Word document ({error})".replace("\n", " ")) from None
    except Exception as error:  # lxml's XMLSyntaxError and friends: a damaged file
        raise DocumentError(f"{Path(path).name}: not a readable Word document ({type(error).__name__})") from None

    from docx.table import Table
    from docx.text.paragraph import Paragraph as DocxParagraph

    blocks: list[str] = []
    counters: dict[tuple[str, int], int] = {}
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "tbl":
            table = Table(child, document)
            for row in table.rows:
                cells = [re.sub(r"\s+", " ", cell.text).strip() for cell in row.cells]
                if any(cells):
                    blocks.append(" | ".join(dict.fromkeys(cells)))  # merged cells repeat
            continue
        if tag != "p":
            continue
        paragraph = DocxParagraph(child, document)
        text = re.sub(r"[ \t]+", " ", paragraph.text.replace("\n", " ")).strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        level = _docx_heading_level(style)
        if level:
            blocks.append("#" * level + " " + text)
            continue
        numbering = child.find(".//{http://schemas.openxmlformats.org/wordprocessingml/2006/main}numPr")
        if numbering is not None or style.lower().startswith("list"):
            ilvl, num_id = _docx_numbering(numbering)
            bullet = "bullet" in style.lower() or (numbering is None and "number" not in style.lower())
            if bullet:
                blocks.append("  " * ilvl + "- " + text)
            else:
                key = (num_id or style, ilvl)
                counters[key] = counters.get(key, 0) + 1
                for deeper in [k for k in counters if k[0] == key[0] and k[1] > ilvl]:
                    del counters[deeper]  # a new item restarts the levels under it
                blocks.append("  " * ilvl + f"{counters[key]}. " + text)
            continue
        blocks.append(text)
    return "\n\n".join(blocks)


def _docx_heading_level(style: str) -> int:
    lowered = style.lower()
    if lowered == "title":
        return 1
    match = re.match(r"heading\s*(\d)", lowered)
    return min(6, int(match.group(1))) if match else 0


def _docx_numbering(numbering) -> tuple[int, str | None]:
    if numbering is None:
        return 0, None
    ns = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    ilvl = numbering.find(ns + "ilvl")
    num_id = numbering.find(ns + "numId")
    level = int(ilvl.get(ns + "val", 0)) if ilvl is not None else 0
    return level, (num_id.get(ns + "val") if num_id is not None else None)


# --------------------------------------------------------------------------- HTML

_DROPPED_TAGS = {"script", "style", "noscript", "template", "nav", "head", "svg", "button", "form", "select", "iframe"}
# Class, id or role words of page furniture rather than content (navigation bars, tables of
# contents, menus, breadcrumbs, sidebars, cookie banners).
_FURNITURE = re.compile(r"(?:^|[\s_-])(?:nav\w*|toc|menu|breadcrumbs?|sidebar|navigation|cookie\w*|skip-?link)(?:$|[\s_-])",
                        re.IGNORECASE)
# The page itself and its main content are never furniture, whatever their classes say: mdbook
# pages (the Rust books, many projects' manuals) mark <html> "sidebar-visible", which dropped
# every word of them.
_CONTENT_TAGS = {"html", "body", "main", "article"}
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "blockquote", "pre", "table", "tr", "ul", "ol", "dl",
               "dt", "dd", "li", "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "aside", "figure",
               "figcaption", "address", "br", "hr", "body", "html", "caption"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "track", "wbr"}


class _HTMLText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.prefix = ""
        self.skip_depth = 0  # inside a dropped element
        self.stack: list[tuple[str, bool]] = []  # (tag, dropped)
        self.lists: list[list] = []  # [kind, counter]
        self.pre = 0
        self.title = ""
        self.in_title = False

    def flush(self):
        text = "".join(self.current)
        text = text.strip("\n") if self.pre else re.sub(r"\s+", " ", text).strip()
        if text:
            self.blocks.append(self.prefix + text)
        self.current, self.prefix = [], ""

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in _VOID:
            if tag in ("br", "hr") and not self.skip_depth:
                self.flush() if tag == "hr" or not self.current else self.current.append("\n" if self.pre else " ")
            return
        attributes = dict(attrs)
        furniture = " ".join(attributes.get(a) or "" for a in ("class", "id", "role"))
        dropped = tag in _DROPPED_TAGS or "hidden" in attributes \
            or (tag not in _CONTENT_TAGS and bool(_FURNITURE.search(furniture)))
        self.stack.append((tag, dropped))
        if dropped:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "pre" and any(t == "p" for t, _ in self.stack[:-1]):
            self.stack[-1] = ("pre-inline", False)  # an example inside a paragraph stays in it
            return
        if tag in _BLOCK_TAGS:
            self.flush()
        if tag in ("ul", "ol"):
            self.lists.append([tag, 0])
        elif tag == "li":
            depth = max(0, len(self.lists) - 1)
            if self.lists and self.lists[-1][0] == "ol":
                self.lists[-1][1] += 1
                self.prefix = "  " * depth + f"{self.lists[-1][1]}. "
            else:
                self.prefix = "  " * depth + "- "
        elif re.fullmatch(r"h[1-6]", tag):
            self.prefix = "#" * int(tag[1]) + " "
        elif tag == "pre":
            self.pre += 1
        elif tag in ("td", "th") and self.current:
            self.current.append(" | ")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in _VOID:
            return
        # Close up to the matching open tag (HTML in the wild leaves some open).
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] in (tag, tag + "-inline"):
                for open_tag, dropped in reversed(self.stack[depth:]):
                    self._close(open_tag, dropped)
                del self.stack[depth:]
                return

    def _close(self, tag, dropped):
        if dropped:
            self.skip_depth -= 1
            return
        if self.skip_depth:
            return
        if tag in _BLOCK_TAGS:
            self.flush()
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if self.in_title:
            self.title += data
            return
        if not self.skip_depth:
            self.current.append(data)


def html_text(path: Path, data: bytes) -> str:
    """Headings as "#" lines, paragraphs, list items; scripts, styles and navigation dropped."""
    text = _decode_html(path, data)
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError) as error:  # pragma: no cover - html.parser is lenient
        raise DocumentError(f"{Path(path).name}: not readable HTML ({error})".replace("\n", " ")) from None
    parser.flush()
    if not parser.blocks and "<" not in text:
        raise DocumentError(f"{Path(path).name}: no HTML markup found in the file")
    blocks = parser.blocks
    if parser.title.strip() and not any(b.startswith("#") for b in blocks):
        blocks.insert(0, "# " + re.sub(r"\s+", " ", parser.title).strip())  # a page without headings: its <title>
    return "\n\n".join(blocks)


def _decode_html(path: Path, data: bytes) -> str:
    if b"\x00" in data[:4096] and data[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        raise DocumentError(f"{Path(path).name}: looks like a binary file, not HTML")
    declared = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_-]+)", data[:4096], re.IGNORECASE)
    for encoding in ("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig",
                     declared.group(1).decode("ascii") if declared else None):
        if not encoding:
            continue
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    raise DocumentError(f"{Path(path).name}: the HTML is not valid UTF-8 (nor its declared encoding); save it as UTF-8 and retry")
