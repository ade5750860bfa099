"""The statement PDF, read back with poppler (pdftotext, pdfinfo, pdffonts, pdfimages).

What a prosecutor or a defence lawyer would check: the text is exactly what was
typed (however hostile), names in any script come out, the page counts in the
declaration and in "Page X of Y" are right, the restricted rear page is
a document of its own (never inside the statement), the fonts are embedded, and nothing reached the network or the disk.

Comparisons ignore whitespace (pdftotext chooses its own line breaks and
spacing) and apply NFKC to both sides (Arabic is drawn with presentation forms,
which pdftotext returns; NFKC folds them back to plain letters). pdftotext puts
right-to-left text back into logical order and wraps it in U+202B/U+202C,
which are removed before comparing: our own text cannot contain them, because
the renderer replaces bidi controls with U+FFFD. For Arabic with brackets or
vowel marks, or mixed with English on one line, pdftotext's reconstruction is
approximate (it does not un-mirror brackets, and it orders marks by position),
so those cases check that the letters are there and the Arabic font embedded;
plain Arabic names must come back exactly.
"""

from __future__ import annotations

import io
import re
import shutil
import socket
import subprocess
import time
import unicodedata
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from evr_desktop.domain.officer import OfficerIdentity
from evr_desktop.domain.statement_doc import (
    SignatureKind,
    StatementContent,
    StatementType,
    WitnessSignature,
)
from evr_desktop.statement.pdf import RESTRICTED_BANNER, render_rear_page, render_statement
from evr_desktop.statement.templates import load_templates

OFFICER = OfficerIdentity("PC Imogen Testwright", "TW 9001", "Testshire Police", "Testford")
TEMPLATES = load_templates()
BASE_FIELDS = {
    "classification": "OFFICIAL-SENSITIVE",
    "urn": "01TS1234567",
    "statement_of": "Ann EXAMPLE",
    "age": "Over 18",
    "occupation": "Nurse",
    "visually_recorded": "yes",
}
BEGIN, END = "BEGINOFNARRATIVE", "ENDOFNARRATIVE"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian package poppler-utils): run ./dev test")
    return path


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def write(tmp_path: Path, pdf: bytes, name: str = "statement.pdf") -> Path:
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / name
    path.write_bytes(pdf)
    return path


def text_of(path: Path, first: int | None = None, last: int | None = None) -> str:
    args = [tool("pdftotext"), "-enc", "UTF-8"]
    if first is not None:
        args += ["-f", str(first)]
    if last is not None:
        args += ["-l", str(last)]
    return run(*args, str(path), "-")


def page_count(path: Path) -> int:
    info = run(tool("pdfinfo"), str(path))
    return int(re.search(r"^Pages:\s+(\d+)$", info, re.M).group(1))


def squash(text: str) -> str:
    """For comparing: NFKC, no whitespace, no bidi embedding marks added by pdftotext."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub("[\u202a-\u202e]", "", text)
    return "".join(text.split())


def content(narrative: str = "", **fields) -> StatementContent:
    return StatementContent(fields={**BASE_FIELDS, **fields}, narrative=narrative)


def signature_png() -> bytes:
    img = Image.new("RGBA", (300, 90), (255, 255, 255, 0))
    ImageDraw.Draw(img).line([(10, 60), (60, 15), (110, 70), (180, 20), (290, 55)],
                             fill=(0, 0, 90, 255), width=4)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def narrative_between_markers(path: Path) -> str:
    text = text_of(path)
    assert BEGIN in text and END in text, text[:2000]
    return text.split(BEGIN, 1)[1].split(END, 1)[0]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the render loudly."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network access attempted during rendering: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))
    yield attempts
    assert attempts == []


# -- hostile text renders literally --------------------------------------------------------

# (what is typed, what must be drawn: None means "exactly what was typed")
HOSTILE = {
    "reportlab markup": ('<font color="red" size=40>big red</font> <b>bold</b> <i>it</i> '
                         '<para>p</para> <br/> <super>2</super> <seq id="x"/> <onDraw name=x/>', None),
    "image tag": ('<img src="file:///etc/passwd" width="100" height="100"/> <img src="/etc/passwd">', None),
    "link tag": ('<a href="https://example.invalid/x">click</a> <link href="#top">top</link>', None),
    "lone ampersand and entities": ("Fish & chips; &amp; &lt;b&gt; &#60; &nbsp; &", None),
    "unbalanced tags": ("<b>never closed <i> </u> </para> <font <<>> ]]> <!-- x", None),
    "right-to-left override": ("invoice\u202egnp.exe and \u202aembedded\u202c and \u2066isolate\u2069",
                               "invoice\ufffdgnp.exe and \ufffdembedded\ufffd and \ufffdisolate\ufffd"),
    "control characters": (
        "a\x00b\x01c\x07d\x1be\x7ff\x80g\x9fh", "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh"
    ),
    "tab and carriage returns": ("one\ttwo\r\nthree\rfour", "one two three four"),
    "emoji": ("He sent 😀 🦊 👩\u200d💻 ❤\ufe0f and 🫠",  # 🫠 (Unicode 14) is in no bundled font
              "He sent 😀 🦊 👩💻 ❤ and \ufffd"),
    "Polish name": ("Zofia Wiśniewska z Łodzi (Łódź), ul. Żółta 5", None),
    "Welsh name": ("Siân ap Dafydd o Ŵyl Ŷd; Llŷr, Gwên, Dŵr, tŷ, â", None),
    "Chinese name": ("李明住在伦敦，他说：“我没看见。”", None),
    "Arabic name": ("محمد الحسيني", None),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_text_renders_literally(case, tmp_path, no_network):
    typed, drawn = HOSTILE[case]
    pdf = render_statement(content(f"{BEGIN}\n{typed}\n{END}"), TEMPLATES, OFFICER)
    got = narrative_between_markers(write(tmp_path, pdf))
    assert squash(got) == squash(typed if drawn is None else drawn)


def test_markup_in_header_fields_and_officer_is_literal(tmp_path, no_network):
    officer = OfficerIdentity("PC <b>Bold</b> & Co", "TW 9001", "Testshire Police", "<img src=x>")
    fields = dict(urn="<b>&amp;", statement_of='<a href="x">Name</a>', occupation="<font size=99>&")
    path = write(tmp_path, render_statement(content("text", **fields), TEMPLATES, officer))
    page1 = squash(text_of(path, 1, 1))
    for value in ("<b>&amp;", '<a href="x">Name</a>', "<font size=99>&", "PC <b>Bold</b> & Co (TW 9001)"):
        assert squash(value) in page1


def test_img_tag_cannot_read_a_file(tmp_path, no_network):
    passwd = Path("/etc/passwd").read_text().splitlines()[0]  # "root:x:0:0:..."
    typed = '<img src="file:///etc/passwd"/> <img src="/etc/passwd"/>'
    path = write(tmp_path, render_statement(content(f"{BEGIN}\n{typed}\n{END}"), TEMPLATES, OFFICER))
    everything = text_of(path)
    assert squash(typed) in squash(everything)
    assert passwd not in everything
    assert "root:x:" not in everything
    images = run(tool("pdfimages"), "-list", str(path)).splitlines()[2:]
    assert images == []  # no signature given: no image of any kind in the file


@pytest.mark.parametrize("name, script", [
    ("Zofia WIŚNIEWSKA", "Polish"),
    ("Siân ap DAFYDD-ŴYN", "Welsh"),
    ("محمد الحسيني", "Arabic"),
    ("李明", "Chinese"),
])
def test_names_in_any_script_in_header_and_continuation(name, script, tmp_path, no_network):
    narrative = "\n".join(f"Line {i} of the account." for i in range(40))  # two statement pages
    path = write(tmp_path, render_statement(content(narrative, statement_of=name), TEMPLATES, OFFICER))
    assert squash(name) in squash(text_of(path, 1, 1))
    page2 = squash(text_of(path, 2, 2))
    assert squash("Continuation of statement of") in page2
    assert squash(name) in page2


def test_arabic_mixed_with_english_and_vowel_marks(tmp_path, no_network):
    typed = "The witness محمد الحسيني (علي) said: سَلاَم شُكْرًا 123."
    path = write(tmp_path, render_statement(content(f"{BEGIN}\n{typed}\n{END}"), TEMPLATES, OFFICER))
    got = squash(narrative_between_markers(path))
    for word in ("Thewitness", "said", "123"):
        assert word in got
    letters = {c for c in typed if unicodedata.bidirectional(c) == "AL"}
    assert letters <= set(got)  # every Arabic letter (and vowel mark) is in the text layer
    assert embedded_fonts(path).get("NotoNaskhArabic-Regular") == "yes"


# -- fonts ------------------------------------------------------------------------------------


def embedded_fonts(path: Path) -> dict[str, str]:
    """Font name (without the subset tag) -> the 'emb' column of pdffonts."""
    rows = run(tool("pdffonts"), str(path)).splitlines()[2:]
    fonts = {}
    for row in rows:
        cols = row.split()
        name = cols[0].split("+", 1)[-1]
        fonts[name] = cols[-5]  # name type encoding emb sub uni object ID
    return fonts


@pytest.mark.parametrize("text, font", [
    ("محمد الحسيني", "NotoNaskhArabic-Regular"),
    ("李明住在伦敦", "DroidSansFallback"),
    ("🦊", "Symbola"),
])
def test_fonts_are_embedded(text, font, tmp_path):
    path = write(tmp_path, render_statement(content(text, statement_of=text), TEMPLATES, OFFICER))
    fonts = embedded_fonts(path)
    assert font in fonts, fonts
    assert set(fonts.values()) == {"yes"}, fonts  # every font embedded, no base-14 Helvetica
    assert "Helvetica" not in fonts


# -- page counts ------------------------------------------------------------------------------

# One paragraph per narrative line; these counts sit in the middle of the range
# that gives each number of statement pages (about 21 lines fit on page 1 under
# the header and 36 on each continuation page).
PAGES_FOR_LINES = [(1, 10), (2, 40), (10, 330), (40, 1410)]


@pytest.mark.parametrize("pages, lines", PAGES_FOR_LINES)
def test_page_numbers_and_declaration_count(pages, lines, tmp_path):
    narrative = "\n".join(f"Line {i} of the account." for i in range(lines))
    pdf = render_statement(content(narrative), TEMPLATES, OFFICER)
    path = write(tmp_path, pdf)
    total = page_count(path)
    whole = text_of(path)
    declared = int(re.search(r"consisting of (\d+) page\(s\)", whole).group(1))
    assert declared == pages
    assert total == pages  # the restricted rear page is a document of its own
    assert RESTRICTED_BANNER not in whole and "Restricted rear page" not in whole
    for n in range(1, pages + 1):
        page = text_of(path, n, n)
        assert f"Page {n} of {pages}" in page
        assert RESTRICTED_BANNER not in page
        assert "Signature witnessed by:" in page and "PC Imogen Testwright (TW 9001)" in page
        assert page.count("OFFICIAL-SENSITIVE") == 2  # top and bottom
        if n > 1:
            assert "Continuation of statement of Ann EXAMPLE" in page
    last_statement_page = text_of(path, pages, pages)
    assert f"Line {lines - 1} of the account." in last_statement_page


def test_the_rear_page_is_its_own_document_with_its_own_numbering(tmp_path):
    c = content("Short.")
    path = write(tmp_path, render_statement(c, TEMPLATES, OFFICER))
    assert page_count(path) == 1
    page1 = text_of(path, 1, 1)
    assert "consisting of 1 page(s)" in page1 and "Page 1 of 1" in page1
    rendered = render_rear_page(c, TEMPLATES, OFFICER)
    rear_path = write(tmp_path, rendered.pdf, "rear.pdf")
    assert rendered.pages == page_count(rear_path) == 1
    rear = text_of(rear_path)
    assert RESTRICTED_BANNER in rear
    assert "Restricted rear page 1 of 1" in rear
    assert "OFFICIAL-SENSITIVE" in rear and "MG11" in rear
    assert "Ann EXAMPLE" in rear and "01TS1234567" in rear  # matched to its statement
    assert not re.search(r"\bPage \d+ of \d+", rear)
    assert "consisting of" not in rear and "Short." not in rear
    info = run(tool("pdfinfo"), str(rear_path))
    assert re.search(r"^Title:\s+Witness statement: restricted rear page$", info, re.M)
    assert "EXAMPLE" not in info


def test_a_long_rear_page_flows_onto_a_second_restricted_page(tmp_path):
    long_address = "\n".join(f"Flat {i}, Invented Court" for i in range(40))
    rendered = render_rear_page(content("x", home_address=long_address), TEMPLATES, OFFICER)
    path = write(tmp_path, rendered.pdf, "rear.pdf")
    assert rendered.pages == page_count(path) >= 2
    for n in range(1, rendered.pages + 1):
        page = text_of(path, n, n)
        assert RESTRICTED_BANNER in page and f"Restricted rear page {n} of {rendered.pages}" in page


# -- the MG11 itself --------------------------------------------------------------------------


def test_page_one_reads_as_an_mg11(tmp_path):
    sig = WitnessSignature(SignatureKind.DRAWN, signature_png(), datetime(2024, 5, 3, 21, 40))
    note = "Recording SHA-256: " + "ab" * 32
    c = content("I was walking home.", age="16")
    path = write(tmp_path, render_statement(c, TEMPLATES, OFFICER, sig, recording_note=note))
    page1 = text_of(path, 1, 1)
    mg11 = TEMPLATES.mg11
    for expected in ("OFFICIAL-SENSITIVE", "MG11", "WITNESS STATEMENT", "01TS1234567", "Ann EXAMPLE",
                     "Nurse", "16", "3 May 2024", note):
        assert expected in page1, expected
    for label in (mg11.field("urn").label, mg11.field("statement_of").label,
                  mg11.field("age").label, mg11.field("occupation").label):
        assert label in page1
    assert squash(mg11.field("visually_recorded").label + "Yes") in squash(page1)
    assert squash(mg11.statutory_basis) in squash(page1)
    assert squash(mg11.declaration_text(1)) in squash(page1)
    assert page1.index("I was walking home.") > page1.index("do not believe to be true")
    # the signature image: after the declaration, in the footer and after the narrative
    images = run(tool("pdfimages"), "-list", str(path)).splitlines()[2:]
    pages_with_image = [int(r.split()[0]) for r in images if r.split()[2] == "image"]
    assert pages_with_image == [1, 1, 1]
    # ... and once on the rear page, beside the consents
    rear = write(tmp_path, render_rear_page(c, TEMPLATES, OFFICER, sig).pdf, "rear.pdf")
    images = run(tool("pdfimages"), "-list", str(rear)).splitlines()[2:]
    assert [int(r.split()[0]) for r in images if r.split()[2] == "image"] == [1]
    assert "3 May 2024" in text_of(rear)


def test_victim_personal_statement_is_still_an_mg11(tmp_path):
    c = StatementContent(StatementType.VPS, fields=BASE_FIELDS, narrative="How it affected me.")
    path = write(tmp_path, render_statement(c, TEMPLATES, OFFICER))
    page1 = text_of(path, 1, 1)
    assert "VICTIM PERSONAL STATEMENT" in page1 and "MG11" in page1
    assert "Victim personal statement" in run(tool("pdfinfo"), str(path))


def test_rear_page_fields(tmp_path):
    fields = {
        "home_address": "12 Any Street\nTestford", "postcode": "TF1 2AB", "mobile_phone": "07700 900123",
        "preferred_contact": "Text message", "date_of_birth": "1990-04-01", "no_dates_to_avoid": True,
        "willing_to_attend_court": "yes", "special_measures": "no",
        "consent_a_process_explained": "yes", "consent_c_medical_records_police": "n/a",
        "consent_f_witness_service": "no", "time_taken": "2024-05-03T21:30",
        "place_taken": "By video call: officer at Testford police station, witness at home",
    }
    statement = write(tmp_path, render_statement(content("Text.", **fields), TEMPLATES, OFFICER))
    path = write(tmp_path, render_rear_page(content("Text.", **fields), TEMPLATES, OFFICER).pdf, "rear.pdf")
    assert page_count(path) == 1
    rear = squash(text_of(path))
    mg11 = TEMPLATES.mg11
    for f in mg11.restricted_fields:
        assert squash(f.label) in rear, f.label
    for value in ("12 Any Street", "Testford", "TF1 2AB", "07700 900123", "Text message", "1 April 1990",
                  "N/A", "21:30 on 3 May 2024", "PC Imogen Testwright", "TW 9001",
                  "By video call: officer at Testford police station, witness at home"):
        assert squash(value) in rear, value
    # -layout keeps each row on one line: the label's first line, then its value
    layout = run(tool("pdftotext"), "-layout", "-enc", "UTF-8", "-f", "1", "-l", "1", str(path), "-")
    rows = {
        "consent_a_process_explained": "Yes", "consent_c_medical_records_police": "N/A",
        "consent_f_witness_service": "No", "no_dates_to_avoid": "Yes", "special_measures": "No",
        "consent_b_leaflet_given": "",  # blank: an empty line to fill in
    }
    for field_id, answer in rows.items():
        first_words = " ".join(mg11.field(field_id).label.split()[:3])
        line = next(ln for ln in layout.splitlines() if first_words in ln)
        after = line.split(first_words, 1)[1].split()
        if answer:
            assert after[-1] == answer, line
        else:
            assert not after or after[-1] not in ("Yes", "No", "N/A"), line
    in_statement = squash(text_of(statement))
    assert "RESTRICTED" not in in_statement
    for value in ("12 Any Street", "TF1 2AB", "07700 900123", "Text message", "1 April 1990"):
        assert squash(value) not in in_statement, value


def test_metadata_names_no_one(tmp_path):
    name = "Zofia WIŚNIEWSKA"
    path = write(tmp_path, render_statement(content("x", statement_of=name), TEMPLATES, OFFICER))
    info = run(tool("pdfinfo"), str(path))
    assert re.search(r"^Title:\s+Witness statement$", info, re.M)
    assert "WIŚNIEWSKA" not in info and "Zofia" not in info and "Testwright" not in info
    raw = path.read_bytes()
    for needle in (name.encode(), name.encode("utf-16-be"), b"Testwright"):
        assert needle not in raw  # compressed streams; nothing readable outside them


def test_output_is_reproducible():
    c = content("Same text, same bytes.")
    assert render_statement(c, TEMPLATES, OFFICER) == render_statement(c, TEMPLATES, OFFICER)


def test_signature_must_be_png():
    bad = WitnessSignature(SignatureKind.DRAWN, b"GIF89a...", datetime(2024, 5, 3))
    with pytest.raises(ValueError, match="PNG"):
        render_statement(content("x"), TEMPLATES, OFFICER, bad)


# -- size -------------------------------------------------------------------------------------


def test_a_one_megabyte_paragraph(tmp_path, no_network):
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    body = " ".join(words[i % 8] for i in range(140_000))[: 1_000_000 - 40]
    narrative = f"FIRSTWORD {body} LASTWORD"
    assert len(narrative) <= 1_000_000 and "\n" not in narrative
    start = time.monotonic()
    pdf = render_statement(content(narrative), TEMPLATES, OFFICER)
    elapsed = time.monotonic() - start
    assert elapsed < 15, f"a 1 MB paragraph took {elapsed:.1f} s"
    path = write(tmp_path, pdf)
    total = page_count(path)
    # ~80 characters a line, ~36 lines a page: 1 MB is a few hundred pages
    assert 200 < total < 450, total
    statement_pages = total
    assert "FIRSTWORD" in text_of(path, 1, 1)
    last = text_of(path, statement_pages, statement_pages)
    assert "LASTWORD" in last and f"Page {statement_pages} of {statement_pages}" in last
    assert f"consisting of {statement_pages} page(s)" in text_of(path, 1, 1)
