"""Read documents (.txt, .md, .pdf) and split them into paragraphs with stable ids.

A paragraph here is what a reader would call one: a block of text between blank lines.
The rules, in the order they apply:

* Numbered paragraphs ("1.", "12)") keep their number as their label (¶12), so a citation
  matches what the reader sees in the document. Other paragraphs are labelled by position:
  ¶1, ¶2 ... in a document without numbering, "intro 1", "intro 2" ... before the first
  numbered paragraph of a numbered document, "note 1" ... after it.
* Headings (Markdown "#", a line in bold, a line in capitals, or a short title line right
  before a body paragraph) are not paragraphs: they become the section of what follows.
* A block that starts in lower case continues the paragraph before it: a page break cut it.
* Very short blocks that are not headings (a date, "Excellency,", a name) are joined to the
  paragraph that follows them, so they do not become one-line "paragraphs" of their own.
* A letter's sign-off is the exception: after the complimentary close ("Yours sincerely,",
  "... the assurances of my highest consideration."), the signer's name belongs to the
  signature before it, and the address block after the name (lines without a full stop) is
  a paragraph of its own, in a section named "Recipients".

Ids are "<document id>#<label>" — the same on every rebuild from the same file, and unique
across documents because the document id is derived from the file name (with a short hash of
the path when two files share a name).

Only the standard library and pypdf are used here.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import DocumentError

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf")
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # a bigger file is almost surely not a text document

_NUMBERED = re.compile(r"^\s*(\d{1,3})[.)]\s+(?=\S)")
_MD_HEADING = re.compile(r"^\s*#{1,6}\s+")
_BOLD_LINE = re.compile(r"^\s*(\*\*|__)(.+?)(\*\*|__)\s*$", re.S)
_TERMINAL = ".!?:;,"
_FRAGMENT_WORDS = 6  # blocks shorter than this (not headings) are joined to the next one
_CLOSING = re.compile(
    r"^(?:yours\s+(?:sincerely|faithfully|truly|respectfully)|sincerely(?:\s+yours)?|respectfully(?:\s+yours)?"
    r"|(?:with\s+)?(?:best|kind|warm|warmest)\s+regards|regards)\s*,?$"
    r"|assurances?\s+of\s+my\s+(?:highest|high|most\s+distinguished)\s+consideration",
    re.IGNORECASE)
RECIPIENTS_SECTION = "Recipients"
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Paragraph":
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Document:
    """A source file and its paragraphs."""

    path: Path
    doc_id: str
    sha256: str
    paragraphs: list[Paragraph]


# --------------------------------------------------------------------------- reading


def read_text(path: Path) -> str:
    """The text of a supported file, or a DocumentError saying why there is none."""
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
    text = _pdf_text(path, data) if suffix == ".pdf" else _decode(path, data)
    if not text.strip():
        raise DocumentError(f"{path.name}: no text found in the document")
    return text


def _decode(path: Path, data: bytes) -> str:
    # UTF-16 only with its byte-order mark: any even-length bytes "decode" as UTF-16.
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if b"\x00" in data[:8192] and not utf16:
        raise DocumentError(f"{path.name}: looks like a binary file, not text")
    encoding = "utf-16" if utf16 else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise DocumentError(f"{path.name}: the text is not valid UTF-8; save it as UTF-8 and retry") from None
    controls = sum(1 for ch in text[:8192] if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > 0.01 * min(len(text), 8192):
        raise DocumentError(f"{path.name}: looks like a binary file, not text")
    return text


def _pdf_text(path: Path, data: bytes) -> str:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        # A page break becomes a block boundary; the lower-case rule joins split paragraphs.
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as error:
        raise DocumentError(f"{path.name}: not a readable PDF ({error})") from None
    return "\n\n".join(pages)


# --------------------------------------------------------------------------- splitting


@dataclass
class _Block:
    text: str
    kind: str = "body"  # "body", "heading" or "fragment"
    number: int | None = None


def _blocks(text: str) -> list[_Block]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    raw = re.split(r"\n[ \t]*\n", text)
    blocks = []
    for chunk in raw:
        # A numbered paragraph starting on its own line opens a new block even without a
        # blank line before it (common in PDF text).
        for piece in re.split(r"\n(?=\s*\d{1,3}[.)]\s+[A-Z])", chunk):
            if piece.strip():
                blocks.append(_Block(piece.strip()))
    return blocks


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _looks_like_heading(block: _Block, next_block: _Block | None) -> bool:
    text = block.text
    if _MD_HEADING.match(text) or _BOLD_LINE.match(text):
        return True
    flat = _flat(text)
    words = flat.split()
    if not words or _NUMBERED.match(text) or flat[-1] in _TERMINAL:
        return False
    letters = [ch for ch in flat if ch.isalpha()]
    if len(words) <= 12 and len(letters) >= 2 and all(ch.isupper() for ch in letters):
        return True  # A LINE IN CAPITALS
    if len(words) > 8 or not flat[0].isupper():
        return False
    # A short title line counts as a heading only when body text or another heading follows.
    if next_block is None:
        return False
    nxt = _flat(next_block.text)
    return bool(
        _NUMBERED.match(next_block.text)
        or _MD_HEADING.match(next_block.text)
        or _BOLD_LINE.match(next_block.text)
        or len(nxt.split()) >= 20
        or (nxt and all(ch.isupper() for ch in nxt if ch.isalpha()) and len(nxt.split()) <= 12)
    )


def _mark_sign_off(blocks: list[_Block]) -> None:
    """Mark a letter's signer ("signature") and address block ("recipients").

    After a complimentary close come signature lines, the signer's name (a short fragment)
    and, in UN-style letters, the recipients' address block. Without this the name would
    be joined to the address block that follows it, and "To whom is the letter addressed?"
    would have no paragraph that says so."""
    for i, block in enumerate(blocks):
        if block.kind == "heading" or block.number is not None or not _CLOSING.search(_flat(block.text)):
            continue
        end = i + 1
        while end < len(blocks) and blocks[end].kind != "heading" and blocks[end].number is None:
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


def _heading_text(text: str) -> str:
    text = _MD_HEADING.sub("", text)
    match = _BOLD_LINE.match(text)
    if match:
        text = match.group(2)
    return _flat(text).strip("*_ ")


def split_paragraphs(text: str, document: str, doc_id: str) -> list[Paragraph]:
    """Split a document's text into paragraphs (see the module docstring for the rules)."""
    blocks = _blocks(text)
    for i, block in enumerate(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        match = _NUMBERED.match(block.text)
        if match:
            block.number = int(match.group(1))
            block.text = block.text[match.end():]
        elif _looks_like_heading(block, nxt):
            block.kind = "heading"
        elif len(_flat(block.text).split()) < _FRAGMENT_WORDS:
            block.kind = "fragment"

    _mark_sign_off(blocks)

    # Fragments right before a heading belong to the heading run (e.g. a place and date line
    # under a title); others are joined to the paragraph that follows them.
    for i in range(len(blocks) - 2, -1, -1):
        if blocks[i].kind == "fragment" and blocks[i + 1].kind == "heading":
            blocks[i].kind = "heading"

    merged: list[_Block] = []
    pending: list[str] = []  # fragments waiting for the next body paragraph
    section = ""
    sections: list[str] = []
    for block in blocks:
        if block.kind == "heading":
            if pending:  # short text closing a section stays in that section
                merged.append(_Block(" ".join(pending)))
                sections.append(section)
                pending = []
            section = _heading_text(block.text)
            continue
        flat = _flat(block.text)
        if block.kind == "signature" and merged and not pending:
            merged[-1].text = merged[-1].text + " " + flat  # the signer's name closes the letter
            continue
        if block.kind == "recipients":
            if pending:
                merged.append(_Block(" ".join(pending)))
                sections.append(section)
                pending = []
            merged.append(_Block(flat))
            sections.append(RECIPIENTS_SECTION)
            continue
        starts_lower = flat[:1].islower()
        if block.kind == "body" and block.number is None and starts_lower and merged and not pending:
            merged[-1].text = merged[-1].text + " " + flat  # the page break cut this paragraph
            continue
        if block.kind == "fragment":
            pending.append(flat)
            continue
        if pending:
            flat = " ".join(pending + [flat])
            pending = []
        merged.append(_Block(flat, "body", block.number))
        sections.append(section)
    if pending:  # fragments at the very end join the last paragraph of their section
        if merged and sections[-1] == section:
            merged[-1].text += " " + " ".join(pending)
        else:
            merged.append(_Block(" ".join(pending)))
            sections.append(section)

    numbered = any(b.number is not None for b in merged)
    paragraphs: list[Paragraph] = []
    seen_labels: set[str] = set()
    position = {"intro": 0, "note": 0, "": 0}
    seen_number = False
    for block, block_section in zip(merged, sections):
        if block.number is not None:
            seen_number = True
            label = f"¶{block.number}"
        else:
            prefix = "" if not numbered else ("note" if seen_number else "intro")
            position[prefix] += 1
            label = f"{prefix} {position[prefix]}" if prefix else f"¶{position[prefix]}"
        base, suffix = label, 2
        while label in seen_labels:  # a document that numbers twice: keep ids unique
            label = f"{base} ({suffix})"
            suffix += 1
        seen_labels.add(label)
        paragraphs.append(
            Paragraph(
                id=f"{doc_id}#{_slug(label)}",
                document=document,
                label=label,
                number=block.number,
                section=block_section,
                text=_flat(_strip_markdown(block.text)),
            )
        )
    return paragraphs


def _strip_markdown(text: str) -> str:
    return re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)


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
    text = read_text(path)
    doc_id = doc_id or document_id(path)
    paragraphs = split_paragraphs(text, path.name, doc_id)
    if not paragraphs:
        raise DocumentError(f"{path.name}: no paragraphs found in the document")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Document(path=path, doc_id=doc_id, sha256=sha, paragraphs=paragraphs)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files named directly, plus the supported files inside named folders (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file())
            if not found:
                raise DocumentError(f"{path}: no .txt, .md or .pdf files in this folder")
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
