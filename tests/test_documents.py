"""Splitting documents into paragraphs, and every kind of bad document."""

from pathlib import Path

import pytest

from qa.documents import load_document, load_documents, split_paragraphs
from qa.errors import DocumentError

from .conftest import DOC, SEED


def make_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A minimal valid PDF, one text line per entry, pages as given (no library needed)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None,
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        ops = ["BT /F1 11 Tf 14 TL 50 780 Td"]
        for line in lines:
            ops.append("(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*")
        ops.append("ET")
        stream = "\n".join(ops)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents {content} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = "%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out.encode("latin-1")))
        out += f"{number} 0 obj\n{body}\nendobj\n"
    xref = len(out.encode("latin-1"))
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    path.write_bytes(out.encode("latin-1"))
    return path


@pytest.fixture(scope="module")
def seed():
    return load_document(SEED)


def test_numbered_paragraphs_keep_their_numbers(seed):
    numbered = [p for p in seed.paragraphs if p.number is not None]
    assert [p.number for p in numbered] == list(range(1, 14))
    assert [p.label for p in numbered] == [f"¶{n}" for n in range(1, 14)]
    assert seed.paragraphs[-1].id == DOC + "13"
    assert not numbered[10].text.startswith("11.")  # the number is the label, not text


def test_page_breaks_are_joined(seed):
    by_label = {p.label: p for p in seed.paragraphs}
    assert "while also calling for the establishment and strengthening" in by_label["¶7"].text
    assert "Prevention of Genocide and on the Responsibility to Protect to bring" in by_label["¶11"].text
    assert not any(p.text[0].islower() for p in seed.paragraphs)


def test_headings_become_sections_not_paragraphs(seed):
    by_label = {p.label: p for p in seed.paragraphs}
    assert by_label["¶1"].section == "Opening Segment"
    assert by_label["¶4"].section == "Panel Discussion"
    assert by_label["¶13"].section == "Interactive Dialogue"
    texts = [p.text for p in seed.paragraphs]
    assert "Panel Discussion" not in texts and "PRESIDENT'S SUMMARY" not in texts


def test_cover_letter_blocks_get_labels_and_short_lines_are_joined(seed):
    intro = [p for p in seed.paragraphs if p.number is None]
    assert [p.label for p in intro] == [f"intro {i}" for i in range(1, len(intro) + 1)]
    assert intro[0].text.startswith("11 September 2017 Excellency, I am pleased")
    assert all(len(p.text.split()) >= 6 for p in seed.paragraphs)


def test_letter_sign_off_signer_joins_the_signature_and_recipients_stand_alone(seed):
    by_label = {p.label: p for p in seed.paragraphs}
    assert by_label["intro 5"].text.endswith("written in a cursive style. Peter Thomson")
    recipients = by_label["intro 6"]
    assert recipients.text == "All Permanent Representatives and Permanent Observers to the United Nations New York"
    assert recipients.section == "Recipients"


def test_sign_off_of_a_business_letter():
    text = ("ACME LTD\n\nDear Ms. Rivera,\n\nThank you for your order of 3 May; the parts will ship next week "
            "from our Leeds depot.\n\nYours sincerely,\n\nJohn Smith\nSales Director\n\n"
            "Ms. Ana Rivera\nRivera Tools\n12 High Street, Bristol\n")
    paragraphs = split_paragraphs(text, "letter.txt", "letter")
    assert [(p.text, p.section) for p in paragraphs] == [
        ("Dear Ms. Rivera, Thank you for your order of 3 May; the parts will ship next week from our Leeds depot.",
         "ACME LTD"),
        ("Yours sincerely, John Smith Sales Director", "ACME LTD"),
        ("Ms. Ana Rivera Rivera Tools 12 High Street, Bristol", "Recipients"),
    ]


def test_a_closing_phrase_inside_body_text_changes_nothing():
    text = ("Notes\n\nThe reply ended with kind regards and a promise to write again soon, as usual.\n\n"
            "Short line\n\nThe next paragraph is long enough to be a paragraph of its own here.\n")
    paragraphs = split_paragraphs(text, "notes.txt", "notes")
    assert all(p.section != "Recipients" for p in paragraphs)
    assert paragraphs[-1].text.startswith("Short line The next paragraph")


def test_ids_are_stable_and_unique_across_documents(tmp_path):
    first = load_document(SEED)
    again = load_document(SEED)
    assert [p.id for p in first.paragraphs] == [p.id for p in again.paragraphs]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "notes.md").write_text("# Title\n\nSome text that is long enough to be a paragraph here.\n")
    docs = load_documents([tmp_path / "a" / "notes.md", tmp_path / "b" / "notes.md"])
    ids = [p.id for d in docs for p in d.paragraphs]
    assert len(ids) == len(set(ids)) == 2


def test_markdown_headings_and_unnumbered_labels():
    text = "# Guide\n\nFirst paragraph with several words in it.\n\n## Part two\n\nSecond paragraph, also long enough.\n"
    paragraphs = split_paragraphs(text, "guide.md", "guide")
    # A heading's paragraphs are counted under it; Markdown levels make a section path.
    assert [(p.label, p.section) for p in paragraphs] == [("Guide ¶1", "Guide"), ("Part two ¶1", "Guide > Part two")]
    assert [p.id for p in paragraphs] == ["guide#guide-1", "guide#part-two-1"]


def test_pdf_pages_are_read_and_a_split_paragraph_joined(tmp_path):
    pdf = make_pdf(tmp_path / "report.pdf", [
        ["1. The first paragraph talks about early warning and", "continues on this line."],
        ["2. The second paragraph starts on page two and then", "breaks across the page, while also calling"],
        ["for the establishment of effective mechanisms."],
    ])
    doc = load_document(pdf)
    assert [p.label for p in doc.paragraphs] == ["¶1", "¶2"]
    assert "calling for the establishment of effective mechanisms" in doc.paragraphs[1].text


@pytest.mark.parametrize("name,content,message", [
    ("empty.txt", b"", "empty"),
    ("blank.txt", b"   \n\n  \n", "no text"),
    ("binary.txt", bytes(range(256)) * 20, "binary"),
    ("latin.txt", "caf\xe9 na\xefve r\xe9sum\xe9 ".encode("latin-1") * 5, "UTF-8"),
    ("sheet.xlsx", b"PK\x03\x04", "unsupported"),
    ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
    ("broken.docx", b"PK\x03\x04 not really a zip", "not a readable Word document"),
    ("broken.html", b"\x00\x01\x02binary", "binary"),
])
def test_bad_documents_give_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=message) as caught:
        load_document(path)
    assert "\n" not in str(caught.value)


def test_missing_file_and_folder_without_documents(tmp_path):
    with pytest.raises(DocumentError, match="no such file"):
        load_documents([tmp_path / "nope.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DocumentError, match="no .txt"):
        load_documents([tmp_path / "empty"])


def test_a_very_long_line_is_indexed_in_parts_with_a_warning(tmp_path):
    from qa.documents import LONG_LINE_CHARS, MAX_PARAGRAPH_CHARS, load_document

    path = tmp_path / "dump.txt"
    path.write_text("A short first line.\n\n" + "word, " * (LONG_LINE_CHARS // 3) + "\n", encoding="utf-8")
    document = load_document(path)
    assert len(document.paragraphs) > 2 and all(len(p.text) <= MAX_PARAGRAPH_CHARS for p in document.paragraphs)
    assert len(document.warnings) == 1 and "line 3" in document.warnings[0] and "characters long" in document.warnings[0]
    ordinary = tmp_path / "ordinary.txt"
    ordinary.write_text("A line.\n\nAnother line.\n", encoding="utf-8")
    assert load_document(ordinary).warnings == ()


def test_the_service_keeps_the_warnings_of_its_last_build(tmp_path):
    from qa.documents import LONG_LINE_CHARS
    from qa.service import Service

    from .conftest import FakeEmbedder

    path = tmp_path / "dump.txt"
    path.write_text("word " * (LONG_LINE_CHARS // 4) + "\n", encoding="utf-8")
    service = Service(index_path=tmp_path / "index", embedder=FakeEmbedder())
    service.build([path])
    assert service.warnings and "dump.txt: line 1" in service.warnings[0]
