"""The document model of issue 12: one test per rule and per format (fast, no models)."""

import json
from pathlib import Path

import pytest

from qa.documents import MAX_PARAGRAPH_WORDS, load_document, split_paragraphs
from qa.formats import normalise_characters

from .test_documents import make_pdf

LAYOUT = Path(__file__).resolve().parent.parent / "testsets" / "layout"  # SOURCES.md describes it


def labels(text, name="doc.txt"):
    return [(p.label, p.text[:30]) for p in split_paragraphs(text, name, "doc")]


def test_clauses_sub_clauses_and_a_clause_heading():
    text = ("1. Definitions\n--------------\n\n1.1. \"Contributor\"\n    means each person who contributes.\n\n"
            "2.1. Grants\n\nEach Contributor grants You a licence to use the work here.\n\n"
            "(a) to use, reproduce and modify the work; and\n\n(b) to distribute it.\n")
    found = [label for label, _ in labels(text)]
    assert found == ["1.1", "2.1", "2.1(a)", "2.1(b)"]  # the clause's one paragraph is cited by its number


def test_a_numbered_section_with_one_paragraph_is_cited_by_its_number():
    text = "2.2. Effective Date\n\nThe licences become effective on the date of first distribution.\n"
    assert labels(text)[0][0] == "2.2"


def test_section_sign_is_kept():
    text = "§ 4. Duties\n\nThe tenant keeps the flat clean and in good repair.\n\n(b) The landlord repairs the roof.\n"
    assert [label for label, _ in labels(text)] == ["§ 4", "§ 4(b)"]


def test_definitions_are_labelled_by_their_term():
    text = ("0. Definitions.\n\n\"This License\" refers to version 3 of the licence.\n\n"
            "To \"modify\" a work means to copy or adapt all or part of it.\n")
    assert [label for label, _ in labels(text)] == ["Definitions: “This License”", "Definitions: “modify”"]


def test_entries_of_a_manual_page():
    text = ("OPTIONS\n       -k --keep\n              Keep (don't delete) input files during compression.\n\n"
            "       -q --quiet\n              Suppress all warnings.\n")
    assert [label for label, _ in labels(text)] == ["OPTIONS: -k --keep", "OPTIONS: -q --quiet"]


def test_a_title_block_with_a_version_line_is_a_paragraph():
    text = "Mozilla Public License Version 2.0\n==================================\n\n1.1. \"License\"\n    means this document.\n"
    found = split_paragraphs(text, "mpl.txt", "mpl")
    assert (found[0].label, found[0].text) == ("title", "Mozilla Public License Version 2.0")


def test_a_centred_title_over_several_lines_is_still_the_title():
    # Its lines start at different columns: a title, not an indented example record.
    text = ("                                 Apache License\n                           Version 2.0, January 2004\n"
            "                        http://www.apache.org/licenses/\n\n"
            "   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION\n\n"
            "   1. Definitions.\n\n      \"License\" shall mean the terms and conditions for use, reproduction,\n"
            "      and distribution as defined by Sections 1 through 9 of this document.\n")
    found = split_paragraphs(text, "apache.txt", "apache")
    assert found[0].label == "title" and found[0].text.startswith("Apache License Version 2.0, January 2004")


def test_paragraphs_under_a_heading_count_from_it_and_markdown_keeps_a_path():
    text = "# Guide\n\n## Install\n\nRun the installer and wait until it has finished.\n\nThen restart the machine once it is done.\n"
    found = split_paragraphs(text, "g.md", "g")
    assert [(p.label, p.section) for p in found] == [("Install ¶1", "Guide > Install"), ("Install ¶2", "Guide > Install")]


def test_a_numbered_list_is_not_the_documents_paragraph_numbering():
    text = "# Steps\n\n1. Open the box.\n2. Take the device out.\n\n# Later\n\n1. Plug it in.\n"
    assert [label for label, _ in labels(text, "s.md")] == ["Steps item 1", "Steps item 2", "Later item 1"]


def test_labels_are_unique_short_and_free_of_marker_separators(tmp_path):
    for path in sorted(LAYOUT.iterdir()):
        if path.is_dir() or (path.name.endswith((".jsonl", ".py", ".md")) and path.name != "apt-README.md"):
            continue
        found = [p.label for p in load_document(path).paragraphs]
        assert len(found) == len(set(found)), path.name
        assert all(len(label) <= 40 and "," not in label and " and " not in label for label in found), path.name


def test_long_paragraph_is_cut_at_sentence_ends(tmp_path):
    sentence = "This sentence has exactly ten words in it for counting. "
    text = sentence * 100  # 1000 words on one line
    found = split_paragraphs(text, "long.txt", "long")
    assert [p.label for p in found] == ["¶1", "¶1 part 2", "¶1 part 3", "¶1 part 4"]
    assert all(len(p.text.split()) <= MAX_PARAGRAPH_WORDS and p.text.endswith(".") for p in found)


def test_a_two_megabyte_single_line_file_is_not_one_paragraph(tmp_path):
    path = tmp_path / "one-line.txt"
    path.write_text("word " * 400_000)
    found = load_document(path).paragraphs
    assert len(found) > 1000 and max(len(p.text.split()) for p in found) <= MAX_PARAGRAPH_WORDS


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark(tmp_path, encoding):
    path = tmp_path / "notes.txt"
    path.write_bytes("Café notes: the meeting moved to Thursday at noon, room 4.\n".encode(encoding))
    assert load_document(path).paragraphs[0].text.startswith("Café notes")


def test_ligatures_and_typeset_minus_are_normalised():
    assert normalise_characters("resolve the conﬂicts with \u2212\u2212staged and co\u2010operate") == \
        "resolve the conflicts with --staged and co-operate"


def test_pdf_running_headers_page_numbers_hyphenation_and_pages(tmp_path):
    def body(n):
        word = ["one", "two", "three"][n - 1]
        return [f"The first paragraph of page {word} talks about early", "warning and about preven-",
                "tion, and it ends on this line.", "", f"A second paragraph of page {word} follows after a gap."]
    pages = [["ACME Corp Internal Report Page %d of 3" % n, ""] + body(n) + ["", str(n)] for n in (1, 2, 3)]
    pdf = make_pdf(tmp_path / "report.pdf", pages)
    found = load_document(pdf).paragraphs
    texts = " ".join(p.text for p in found)
    assert "ACME" not in texts and "Page" not in texts
    assert "about prevention, and it ends" in found[0].text
    assert [(p.label, p.page) for p in found][:3] == [("p. 1 ¶1", 1), ("p. 1 ¶2", 1), ("p. 2 ¶1", 2)]


def test_docx_headings_and_numbered_lists(tmp_path):
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph("Handbook", style="Title")
    document.add_paragraph("Leave", style="Heading 1")
    document.add_paragraph("Staff take up to twenty-five days of paid leave each year.")
    document.add_paragraph("Ask your manager first.", style="List Number")
    document.add_paragraph("Record the days in the calendar.", style="List Number")
    path = tmp_path / "handbook.docx"
    document.save(path)
    found = load_document(path).paragraphs
    assert [(p.label, p.section) for p in found] == [
        ("Leave ¶1", "Leave"), ("Leave item 1", "Leave"), ("Leave item 2", "Leave")]


def test_html_drops_scripts_styles_and_navigation(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("<html><head><title>T</title><style>p{}</style><script>var x=1;</script></head><body>"
                    "<nav><a href='/'>Home</a> <a href='/a'>About us and more</a></nav>"
                    "<div class='toc'><p>Contents: Intro, Usage</p></div>"
                    "<h1>Guide</h1><h2>Usage</h2><p>Run the <b>tool</b> on each file you want to check.</p>"
                    "<ul><li>It reads every file in the folder you name.</li></ul></body></html>")
    found = load_document(path).paragraphs
    assert [(p.label, p.section, p.text) for p in found] == [
        ("Usage ¶1", "Guide > Usage", "Run the tool on each file you want to check."),
        ("Usage ¶2", "Guide > Usage", "It reads every file in the folder you name.")]


def test_an_example_indented_in_a_manual_page_is_no_heading(tmp_path):
    # Three short "Key: value" lines set deeper than the text: a record the manual shows, not
    # a heading for what follows (nor, with "version" in it, a title).
    path = tmp_path / "pinning.txt"
    path.write_text("NAME\n       pinning - choose package versions\n\nDESCRIPTION\n"
                    "       The specific form assigns a priority to one or more packages with\n"
                    "       a given version, for example to all versions of perl 5.32.\n\n"
                    "           Package: perl\n           Pin: version 5.32*\n           Pin-Priority: 1001\n\n"
                    "       The general form assigns a priority to all of the package versions in\n"
                    "       a given distribution or to all versions coming from one site.\n")
    found = load_document(path).paragraphs
    assert [p.section for p in found] == ["NAME", "DESCRIPTION", "DESCRIPTION", "DESCRIPTION"]
    assert found[2].text.startswith("Package: perl") and found[3].text.startswith("The general form")
    assert "title" not in [p.label for p in found]


def test_a_manual_pages_closing_sections_are_sections_not_a_title(tmp_path):
    # "AUTHORS" after the text is a section like any other (a title is before the prose);
    # its indented names are its text, not headings; a heading in capitals may have seven
    # words and sits over its indented text.
    path = tmp_path / "tool.txt"
    path.write_text(
        "NAME\n       tool - does things\n\n"
        "THE TOOL AND ITS FILES: GENERAL FORMAT\n"
        "       The tool reads its files one by one, in the order given on its command line,\n"
        "       and writes what it finds to the standard output.\n\n"
        "AUTHORS\n       Jason Gunthorpe\n\n       APT team\n\n"
        "NOTES\n        1. APT bug page\n           http://bugs.debian.org/src:apt\n")
    found = [(p.section, p.text) for p in load_document(path).paragraphs]
    assert found[1] == ("THE TOOL AND ITS FILES: GENERAL FORMAT", "The tool reads its files one by one, in the "
                        "order given on its command line, and writes what it finds to the standard output.")
    assert ("AUTHORS", "Jason Gunthorpe APT team") in found
    assert all(section for section, _ in found)  # no title block


def test_a_one_line_example_set_deep_is_no_centred_title(tmp_path):
    # "Pin: release a=stable" at column 15 of a 78-column manual page is an example under its
    # entry; a line whose margins are about equal ("Apache License") is a centred title.
    path = tmp_path / "prefs.txt"
    wide = "           names the archive to which all the packages in the directory tree\n"
    path.write_text(
        "                                 Apache License\n\n"
        "DESCRIPTION\n       the Archive: line\n" + wide * 2 + "           would require the line:\n\n"
        "               Pin: release a=stable\n\n"
        "       the Codename: line\n" + wide * 2 + "           would require the line:\n\n"
        "               Pin: release n=trixie\n\n"
        "       the Label: line\n" + wide * 2 + "\n")
    found = load_document(path).paragraphs
    assert [p.text for p in found if p.text.startswith("Pin:")] == ["Pin: release a=stable", "Pin: release n=trixie"]
    assert [p.section for p in found] == ["DESCRIPTION"] * 5  # no "Pin: ..." section
    assert not any(p.text.startswith("Apache License") for p in found)  # the centred line is a heading


def test_a_sentence_before_a_heading_is_the_text_of_its_section(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# Tool\n\nThe tool does things for the people who use it every day, and this paragraph says "
                    "what it does in more than twenty words.\n\n"
                    "### Version History\n\nSee CHANGELOG.md.\n\n### License\n\nThe MIT License\n")
    found = [(p.section, p.text) for p in load_document(path).paragraphs]
    assert ("Tool > Version History", "See CHANGELOG.md.") in found


def test_a_root_prompt_in_a_manual_page_is_no_heading(tmp_path):
    # "# echo ..." set deep in a manual's example is a command typed as root; a Markdown
    # heading starts within three spaces of the margin. Read as a heading, the command was
    # lost and every later section was filed under it.
    path = tmp_path / "core.txt"
    path.write_text(
        "DESCRIPTION\n       To disable the mechanism that archives core dumps, one can set an override\n"
        "       for it, using something like:\n\n"
        "           # echo \"kernel.core_pattern=core.%p\" > \\\n"
        "                          /etc/sysctl.d/50-coredump.conf\n\n"
        "NOTES\n       The gdb(1) gcore command can be used to obtain a core dump of a running process.\n")
    found = [(p.section, p.text) for p in load_document(path).paragraphs]
    assert any(text.startswith("# echo") and "50-coredump.conf" in text for _, text in found)
    assert found[-1] == ("NOTES", "The gdb(1) gcore command can be used to obtain a core dump of a running process.")
    markdown = tmp_path / "notes.md"
    markdown.write_text("# Setup\n\nRun the installer first, then restart the shell you use.\n\n"
                        "   ## Next\n\nThen read the manual that comes with it.\n")
    assert [p.section for p in load_document(markdown).paragraphs] == ["Setup", "Setup > Next"]


def test_markdown_tilde_fences_are_code_and_bare_tags_are_dropped(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# Setup\n\n<details>\n\nAdd these lines to your config file to set the tool up:\n\n"
                    "  ~~~ nu\n  $env.ROOT = \"~/.tool\" | path expand\n  ~~~\n\n  </details>\n\n## Next\n\n"
                    "Restart your shell for the changes to take effect now.\n")
    found = load_document(path).paragraphs
    assert [p.section for p in found] == ["Setup", "Setup", "Setup > Next"]
    assert found[0].text == "Add these lines to your config file to set the tool up:"
    assert found[1].text.startswith("~~~ nu") and "path expand" in found[1].text
    assert not any("details>" in p.text for p in found)


def test_a_page_whose_own_classes_name_a_sidebar_keeps_its_content(tmp_path):
    # mdbook pages (the Rust books) mark <html> "sidebar-visible": a state of the page, not
    # furniture to drop; the sidebar itself still goes.
    path = tmp_path / "book.html"
    path.write_text("<html class='light sidebar-visible'><body class='nav-open'>"
                    "<nav id='sidebar' class='sidebar'><a href='a.html'>Chapter one of the book</a></nav>"
                    "<div class='sidebar-resize'>Drag to resize the table of contents</div>"
                    "<main><h1>Writing docs</h1><p>Good documentation is not natural to write.</p></main>"
                    "</body></html>")
    found = load_document(path).paragraphs
    assert [p.text for p in found] == ["Good documentation is not natural to write."]




def test_layout_check_meets_its_floors():
    from qa.layout_check import LAYOUT_DIR, MATCH_FLOOR, check_document

    rows = [check_document(p, p.with_name(p.name + ".expected.jsonl")) for p in sorted(LAYOUT_DIR.iterdir())
            if p.with_name(p.name + ".expected.jsonl").exists()]
    assert len(rows) >= 6
    for row in rows:
        assert row["match"] >= MATCH_FLOOR and not row["running_left"], row
    gpl = json.loads((LAYOUT_DIR / "gpl-3.0.pdf.expected.jsonl").read_text().splitlines()[0])
    assert gpl["running"]  # the PDF's running header is checked, not just listed


def test_a_designated_part_is_cited_by_its_designation():
    text = ("Exhibit A - Source Code Form License Notice\n-------------------------------------------\n\n"
            "  This Source Code Form is subject to the terms of the licence.\n\n"
            "You may add additional accurate notices of copyright ownership.\n\n"
            "Exhibit B - \"Incompatible\" Notice\n---------------------------------\n\n"
            "  This Source Code Form is incompatible with the secondary licences.\n")
    assert [label for label, _ in labels(text)] == ["Exhibit A ¶1", "Exhibit A ¶2", "Exhibit B"]
    markdown = "# Chapter 9. Keeping up to date\n\nOne goal is a consistent set of packages for everyone.\n"
    assert labels(markdown, "faq.md")[0][0] == "Chapter 9"


def test_a_capital_letter_after_appendix_may_be_an_article():
    text = "# Appendix A Guide to Tools\n\nThe tools are listed here with what each of them does.\n"
    assert labels(text, "a.md")[0][0] == "Appendix A Guide to Tools ¶1"


def test_a_definition_outside_a_definitions_section_is_counted_by_position():
    text = ("1. Source Code.\n\nThe \"source code\" for a work means the form preferred for changing it.\n\n"
            "A \"Standard Interface\" means an interface that is an official standard.\n\n"
            "The Corresponding Source need not include anything users can regenerate.\n")
    assert [label for label, _ in labels(text)] == ["1 ¶1", "1 ¶2", "1 ¶3"]  # ¶3 is the third one printed


def test_in_a_definitions_section_a_quoted_term_names_its_paragraph():
    text = ("0. Definitions.\n\n\"This License\" refers to version 3 of the licence.\n\n"
            "An interactive user interface displays \"Appropriate Legal Notices\" to the extent that it "
            "includes a convenient feature. It shows a notice.\n")
    assert [label for label, _ in labels(text)] == ["Definitions: “This License”",
                                                    "Definitions: “Appropriate Legal Notices”"]


def test_a_glossary_without_a_telling_heading_is_named_by_its_terms_and_a_lone_definition_is_not():
    glossary = ("# Words\n\n\"Widget\" means a small part of the machine.\n\n"
                "\"Gadget\" means a larger part that holds widgets.\n")
    assert [label for label, _ in labels(glossary, "g.md")] == ["Words: “Widget”", "Words: “Gadget”"]
    note = ("The plant opens at eight and closes at six on weekdays.\n\n"
            "\"Shift\" means the hours one worker is on duty in a day.\n")
    assert [label for label, _ in labels(note)] == ["¶1", "¶2"]


def test_a_long_heading_keeps_the_words_its_longest_label_leaves():
    heading = "How to Apply These Terms to Your New Programs"
    text = f"## {heading}\n\n" + "".join(f"Paragraph number {n} explains one more step of the procedure here.\n\n"
                                      for n in range(1, 13))
    found = [label for label, _ in labels(text, "apply.md")]
    assert found[0] == "How to Apply These Terms to Your New ¶1" and found[-1] == "How to Apply These Terms to Your New ¶12"
    assert all(len(label) <= 40 for label in found)


def test_labels_leave_room_for_parts_and_repeats():
    from qa.labels import fit

    sentence = "This sentence has exactly ten words in it for counting. "
    text = "## How to Apply These Terms to Your New Programs\n\n" + sentence * 40 + "\n"
    found = [label for label, _ in labels(text, "apply.md")]
    assert found == ["How to Apply These Terms to ¶1", "How to Apply These Terms to ¶1 part 2"]
    assert fit("How to Apply These Terms to Your New ¶12 (2)") == "How to Apply These Terms to Your ¶12 (2)"
    assert fit("¶3") == "¶3"


def test_a_lead_in_line_before_a_list_is_a_paragraph_of_its_own():
    text = ("# APT\n\nIncluded tools are:\n\n* **apt-get** for retrieval of packages from the archive\n"
            "* **apt-cache** for querying available information about packages\n")
    assert labels(text, "r.md") == [("APT ¶1", "Included tools are:"), ("APT ¶2", "apt-get for retrieval of packa"),
                                    ("APT ¶3", "apt-cache for querying availab")]
    dated = "12 March 2024\n\nThe committee met in the main hall and agreed on the budget for next year.\n"
    assert len(labels(dated)) == 1  # a short line that leads into no list still joins what follows


def test_short_lines_before_a_code_block_are_kept():
    text = ("# Build\n\nThe build needs a compiler and about two gigabytes of free disk space.\n\n"
            "Run this:\n\n```\nmake all\n```\n\nThen\n\n```\nmake install\n```\n")
    found = [text for _, text in labels(text, "b.md")]
    assert "Run this:" in found and "Then" in found  # once dropped: a code block keeps only its own text


def test_the_blind_annotation_agrees_but_where_the_readme_says_why_not():
    from qa.layout_check import MATCH_FLOOR, _letters, blind_rows

    assert _letters("1.1. \"Contributor\" means") == _letters("“Contributor” means") == "contributormeans"
    rows = {row["document"]: row for row in blind_rows()}
    assert set(rows) == {"mpl-2.0.txt", "gpl-3.0.pdf", "apt-README.md"}
    for name, row in rows.items():
        if name == "apt-README.md":  # a sentence is never cut around its example (README)
            assert all(expected.startswith("Coding ¶") for expected, _, _ in row["misses"]), row["misses"]
        else:
            assert row["match"] >= MATCH_FLOOR, row["misses"]
