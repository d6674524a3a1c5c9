"""The bundled document's paragraphs, pinned as they were before the document model of issue 12.

Existing indexes, test sets and answers cite these ids and labels; a change to the splitter
must leave every one of them (and each paragraph's section and text) exactly as it is."""

import hashlib

from qa.documents import load_document

from .conftest import SEED

PINNED = [
    ["r2p-2017-dialogue-summary#intro-1", "intro 1", None, "THE PRESIDENT OF THE GENERAL ASSEMBLY", "78a0dbccabd95908"],
    ["r2p-2017-dialogue-summary#intro-2", "intro 2", None, "THE PRESIDENT OF THE GENERAL ASSEMBLY", "ec178b3abc27e47b"],
    ["r2p-2017-dialogue-summary#intro-3", "intro 3", None, "THE PRESIDENT OF THE GENERAL ASSEMBLY", "36569ebd57f865e0"],
    ["r2p-2017-dialogue-summary#intro-4", "intro 4", None, "THE PRESIDENT OF THE GENERAL ASSEMBLY", "5e00805034dcde8f"],
    ["r2p-2017-dialogue-summary#intro-5", "intro 5", None, "THE PRESIDENT OF THE GENERAL ASSEMBLY", "cd4687198ea81372"],
    ["r2p-2017-dialogue-summary#intro-6", "intro 6", None, "Recipients", "01feb1c4b9583f6e"],
    ["r2p-2017-dialogue-summary#1", "¶1", 1, "Opening Segment", "7a4756236067180d"],
    ["r2p-2017-dialogue-summary#2", "¶2", 2, "Opening Segment", "0e93c4691871f313"],
    ["r2p-2017-dialogue-summary#3", "¶3", 3, "Opening Segment", "01d64775ca43863f"],
    ["r2p-2017-dialogue-summary#4", "¶4", 4, "Panel Discussion", "c559e4b00fb1af52"],
    ["r2p-2017-dialogue-summary#5", "¶5", 5, "Interactive Dialogue", "bf6db4c90ee03c4f"],
    ["r2p-2017-dialogue-summary#6", "¶6", 6, "Interactive Dialogue", "f9bc020da959ed81"],
    ["r2p-2017-dialogue-summary#7", "¶7", 7, "Interactive Dialogue", "2378d3f2c1182116"],
    ["r2p-2017-dialogue-summary#8", "¶8", 8, "Interactive Dialogue", "c69eef35a11a7a12"],
    ["r2p-2017-dialogue-summary#9", "¶9", 9, "Interactive Dialogue", "68a99510bc624b8f"],
    ["r2p-2017-dialogue-summary#10", "¶10", 10, "Interactive Dialogue", "b31f3e3cabe69674"],
    ["r2p-2017-dialogue-summary#11", "¶11", 11, "Interactive Dialogue", "78b8fb308d01b19d"],
    ["r2p-2017-dialogue-summary#12", "¶12", 12, "Interactive Dialogue", "0df31a088e23cd55"],
    ["r2p-2017-dialogue-summary#13", "¶13", 13, "Interactive Dialogue", "a91c4f6046d08714"],
]


def test_bundled_document_keeps_every_id_label_section_and_text():
    paragraphs = load_document(SEED).paragraphs
    found = [[p.id, p.label, p.number, p.section, hashlib.sha256(p.text.encode()).hexdigest()[:16]]
             for p in paragraphs]
    assert found == PINNED
