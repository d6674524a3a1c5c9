"""Rebuild apache-2.0.docx from /usr/share/common-licenses/Apache-2.0 (Debian's copy of the
Apache License 2.0): its title lines as Title/Subtitle, its capitals lines as Heading 1,
"1. Definitions." as Heading 2, and every other blank-line block as one Word paragraph, as a
person retyping the licence in Word would do. The appendix's boilerplate notice becomes a
"List Bullet" item, so the file has a Word list too. Run: python testsets/layout/make_apache_docx.py"""

import re
from pathlib import Path

import docx

source = Path("/usr/share/common-licenses/Apache-2.0").read_text()
blocks = [b for b in re.split(r"\n\s*\n", source) if b.strip()]
document = docx.Document()
for n, block in enumerate(blocks):
    lines = [line.strip() for line in block.strip("\n").split("\n") if line.strip()]
    text = " ".join(lines)
    if n == 0:  # "Apache License / Version 2.0, January 2004 / http://..."
        document.add_paragraph(lines[0], style="Title")
        for line in lines[1:]:
            document.add_paragraph(line, style="Subtitle")
    elif text.isupper() or text.startswith("APPENDIX"):
        document.add_paragraph(text, style="Heading 1")
    elif re.fullmatch(r"\d+\. [A-Z][a-z]+\.", text):
        document.add_paragraph(text, style="Heading 2")
    elif text.startswith("Copyright [yyyy]") or text.startswith("Licensed under") or text.startswith("http://www.apache.org/licenses/LICENSE") or text.startswith("Unless required by applicable law or agreed to in writing"):
        document.add_paragraph(text, style="List Bullet")
    else:
        document.add_paragraph(text)
document.save(Path(__file__).with_name("apache-2.0.docx"))
