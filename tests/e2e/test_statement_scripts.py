"""Names and narratives in the scripts UK witnesses write, through the real renderer.

For each script a statement is rendered with an invented witness's name in the
header and a sentence in the narrative, and read back three ways:

(a) the glyphs: the content streams are parsed, each glyph drawn in the
    script's font is mapped back through the embedded subset font to its
    outline, and the outlines are compared with HarfBuzz's own shaping of the
    same words with the same font file. Outlines, not glyph ids, because the
    subset renumbers glyphs; equal outline and advance means the same glyph.
    Drawing characters through the cmap (no shaping) gives other glyphs here
    (क + ् + ष instead of the conjunct क्ष), so the comparison fails then.
(b) the text layer: ``pdftotext`` gives the typed text back. Both sides are
    NFKC-normalised (Thai SARA AM and some Indic letters with nukta have
    compatibility or canonical decompositions that extraction need not
    preserve) and whitespace is removed (pdftotext chooses its own spacing);
    the U+202B/U+202C that pdftotext wraps around right-to-left text are dropped.
(c) the ink: the narrative band of page 1, rendered with ``pdftoppm -r 100``,
    is not blank. The PNGs are kept in tmp_path for a person to look at.

Every person and sentence here is invented.
"""

from __future__ import annotations

import re
import struct
import subprocess
import unicodedata
import zlib
from base64 import a85decode
from datetime import datetime
from pathlib import Path

import pytest
import uharfbuzz as hb
from PIL import Image

from evr_desktop.domain.officer import OfficerIdentity
from evr_desktop.domain.statement_doc import SignatureKind, StatementContent, WitnessSignature
from evr_desktop.services import Refused
from evr_desktop.statement import fonts
from evr_desktop.statement.pdf import render_statement
from evr_desktop.statement.templates import load_templates
from tests.e2e.conftest import require

OFFICER = OfficerIdentity("PC Imogen Testwright", "TW 9001", "Testshire Police", "Testford")
TEMPLATES = load_templates()
BEGIN, END = "BEGINOFNARRATIVE", "ENDOFNARRATIVE"

# script -> (font registered for it, invented name, one sentence). Words are
# separated by spaces and hold only the script's own characters (and its
# danda), so each word is one piece drawn in the script's font.
SAMPLES: dict[str, tuple[str, str, str]] = {
    "Devanagari": ("EVR-Devanagari", "क्षितिज श्रीवास्तव",
                   "मैंने रात को खिड़की से दो लोगों को भागते हुए देखा और पुलिस को फ़ोन किया।"),
    "Gurmukhi": ("EVR-Gurmukhi", "ਸ੍ਰੀ ਗੁਰਪ੍ਰੀਤ ਕੌਰ",
                 "ਮੈਂ ਦੁਕਾਨ ਦੇ ਬਾਹਰ ਖੜ੍ਹੀ ਸੀ ਜਦੋਂ ਉਸਨੇ ਮੇਰਾ ਬੈਗ ਖੋਹ ਲਿਆ।"),
    "Bengali": ("EVR-Bengali", "ক্ষমা চক্রবর্তী",
                "আমি রাত দশটায় বাড়ি ফিরছিলাম তখন কেউ আমার ফোন কেড়ে নিল।"),
    "Gujarati": ("EVR-Gujarati", "ક્ષિતિ ત્રિવેદી",
                 "મેં જોયું કે એક માણસ ગાડીની બારી તોડીને અંદરથી થેલી લઈ ગયો।"),
    "Tamil": ("EVR-Tamil", "க்ஷேத்ரா சுப்பிரமணியன்",
              "நான் கடைக்கு வெளியே நின்றபோது அவர் என் கைப்பையை பறித்துக்கொண்டு ஓடினார்"),
    "Sinhala": ("EVR-Sinhala", "ශ්‍රියානි ප්‍රනාන්දු",
                "මම ගෙදර යන විට කවුරුන් හෝ මගේ දුරකථනය උදුරාගෙන දිව්වා"),
    "Thai": ("EVR-Thai", "สมศักดิ์ ใจดี",
             "ผู้ใหญ่บ้านเห็นชายสองคนวิ่งหนีไป ฉันจำหน้าเขาได้ดี"),
    "Khmer": ("EVR-Khmer", "ស្រីពៅ សុខា",
              "ខ្ញុំបានឃើញបុរសម្នាក់ លួចកាបូបរបស់ស្ត្រីចំណាស់"),
    "Ethiopic": ("EVR-Ethiopic", "ፀሐይ ወልደማርያም",
                 "ትናንት ማታ አንድ ሰው የቤቴን በር ሰብሮ ገባ።"),
    "Hebrew": ("EVR-Hebrew", "נועה בן דוד",
               "ראיתי שני אנשים בורחים מהחנות בשעה עשר בלילה"),
    "Armenian": ("EVR-Armenian", "Անահիտ Պետրոսյան",
                 "Երեկ երեկոյան ես տեսա մի տղամարդու որը կոտրեց մեքենայի պատուհանը"),
    "Georgian": ("EVR-Georgian", "ნინო ბერიძე",
                 "გუშინ საღამოს დავინახე კაცი რომელმაც მანქანის ფანჯარა გატეხა"),
}


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def squash(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub("[\u202a-\u202e]", "", text)
    return "".join(text.split())


def content(narrative: str, name: str) -> StatementContent:
    return StatementContent(fields={
        "classification": "OFFICIAL-SENSITIVE", "urn": "01TS1234567", "statement_of": name,
        "age": "Over 18", "occupation": "Nurse", "visually_recorded": "yes",
    }, narrative=narrative)


# -- reading glyphs back out of the PDF ---------------------------------------------------

_OBJ = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.DOTALL)
_TOKEN = re.compile(
    rb"<<|>>|<[0-9A-Fa-f\s]*>|\((?:\\.|[^\\()])*\)|\[|\]|/[^\s/\[\]<>()]+|[-+]?\d*\.?\d+|[A-Za-z'\"*]+",
)


def _objects(pdf: bytes) -> dict[int, bytes]:
    return {int(m.group(1)): m.group(2) for m in _OBJ.finditer(pdf)}


def _stream(obj: bytes) -> bytes:
    head, _, rest = obj.partition(b"stream")
    data = rest.lstrip(b"\r\n").rsplit(b"endstream", 1)[0].rstrip(b"\r\n")
    filters = re.findall(rb"/(ASCII85Decode|FlateDecode)", head)
    for f in filters:
        data = a85decode(data.strip(), adobe=True) if f == b"ASCII85Decode" else zlib.decompress(data)
    return data


def _subset_glyphs(ttf: bytes) -> list[int]:
    """Code -> glyph of a reportlab subset font: its one cmap subtable, format 6
    from code 0 (HarfBuzz reads it as Mac Roman, so it cannot be asked)."""
    num_tables = struct.unpack(">H", ttf[4:6])[0]
    for i in range(num_tables):
        tag, _, offset, _ = struct.unpack(">4sIII", ttf[12 + 16 * i:28 + 16 * i])
        if tag == b"cmap":
            sub = offset + struct.unpack(">I", ttf[offset + 8:offset + 12])[0]
            fmt, _, _, first, count = struct.unpack(">HHHHH", ttf[sub:sub + 10])
            assert fmt == 6 and first == 0
            return list(struct.unpack(f">{count}H", ttf[sub + 10:sub + 10 + 2 * count]))
    raise AssertionError("no cmap in the subset font")


def _outline_key(font: hb.Font, gid: int) -> tuple:
    """A glyph's identity independent of its id: its outline and advance."""
    pen: list[tuple] = []

    class Pen:
        def moveTo(self, p): pen.append(("M", p))
        def lineTo(self, p): pen.append(("L", p))
        def qCurveTo(self, *ps): pen.append(("Q", ps))
        def curveTo(self, *ps): pen.append(("C", ps))
        def closePath(self): pen.append(("Z",))

    font.draw_glyph_with_pen(gid, Pen())
    return (tuple(pen), font.get_glyph_h_advance(gid))


def drawn_pieces(pdf: bytes, base_font: str) -> list[tuple]:
    """Each text object's glyphs drawn in fonts whose name ends with ``base_font``
    (e.g. 'NotoSansDevanagari-Regular'), as outline keys, in content-stream order."""
    objs = _objects(pdf)
    fonts_by_obj: dict[int, tuple[hb.Font, list[int]]] = {}
    for num, body in objs.items():
        m = re.search(rb"/BaseFont /[A-Z]{6}\+([^\s/]+)", body)
        if m and m.group(1).decode() == base_font and b"/FontDescriptor" in body:
            desc = int(re.search(rb"/FontDescriptor (\d+) 0 R", body).group(1))
            ff = int(re.search(rb"/FontFile2 (\d+) 0 R", objs[desc]).group(1))
            ttf = _stream(objs[ff])
            fonts_by_obj[num] = (hb.Font(hb.Face(hb.Blob(ttf))), _subset_glyphs(ttf))
    assert fonts_by_obj, f"{base_font} is not in the PDF"
    resources: dict[bytes, int] = {}
    for body in objs.values():
        for name, num in re.findall(rb"(/F\d+\+\d+) (\d+) 0 R", body):
            resources[name] = int(num)
    pieces: list[tuple] = []
    pages = [objs[int(n)] for body in objs.values() if re.search(rb"/Type /Page\b", body)
             for n in re.findall(rb"/Contents (\d+) 0 R", body)]
    for page in pages:
        current: tuple[hb.Font, list[int]] | None = None
        piece: list[tuple] = []
        operands: list[bytes] = []
        for tok in _TOKEN.findall(_stream(page)):
            if tok == b"ET":
                if piece:
                    pieces.append(tuple(piece))
                piece = []
            elif tok == b"Tf":
                current = fonts_by_obj.get(resources.get(operands[-2], -1))
            elif tok in (b"TJ", b"Tj") and current is not None:
                for op in operands:
                    if op.startswith(b"<") and not op.startswith(b"<<"):
                        for byte in bytes.fromhex(op[1:-1].decode()):
                            gid = current[1][byte]
                            assert gid, f"code {byte} has no glyph in the subset"
                            piece.append(_outline_key(current[0], gid))
                    elif op.startswith(b"("):
                        raise AssertionError("a shaped font drawn with a literal string: not through HarfBuzz")
            if re.fullmatch(rb"[A-Za-z'\"*]+", tok):
                operands = []
            else:
                operands.append(tok)
    return pieces


def expected_pieces(font_name: str, text: str) -> list[tuple]:
    """HarfBuzz's shaping of each word of ``text`` with the same font file, as outline keys."""
    path = fonts.font_folder() / fonts.FONT_FILES[font_name]
    font = hb.Font(hb.Face(hb.Blob.from_file_path(str(path))))
    out = []
    for word in text.split():
        buf = hb.Buffer()
        buf.add_str(word)
        buf.guess_segment_properties()
        hb.shape(font, buf)
        gids = [i.codepoint for i in buf.glyph_infos]
        assert 0 not in gids, f"{word!r}: the font lacks a character (test data error)"
        out.append(tuple(_outline_key(font, g) for g in gids))
    return out


def ink_between_markers(pdf_path: Path, png_path: Path) -> int:
    """Dark pixels in the narrative band of page 1 at 100 dpi (between the marker lines)."""
    bbox = run(require("pdftotext"), "-bbox", "-f", "1", "-l", "1", str(pdf_path), "-")
    box = r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">'
    y_begin = float(re.search(box + BEGIN + "<", bbox).group(2))  # (from the top of the page)
    y_end = float(re.search(box + END + "<", bbox).group(1))
    run(require("pdftoppm"), "-r", "100", "-f", "1", "-l", "1", "-png", "-singlefile",
        str(pdf_path), str(png_path.with_suffix("")))
    img = Image.open(png_path).convert("L")
    scale = 100 / 72
    band = img.crop((0, int(y_begin * scale) + 1, img.width, int(y_end * scale) - 1))
    band.save(png_path.with_name(png_path.stem + "-narrative.png"))
    return sum(band.histogram()[:128])


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("script", sorted(SAMPLES))
def test_script_is_shaped_extracts_and_inks(script, tmp_path):
    font_name, name, sentence = SAMPLES[script]
    pdf = render_statement(content(f"{BEGIN}\n{sentence}\n{END}", name), TEMPLATES, OFFICER)
    path = tmp_path / f"{script}.pdf"
    path.write_bytes(pdf)

    # (a) glyphs drawn == HarfBuzz's glyphs, word by word.
    base = fonts.FONT_FILES[font_name].removesuffix(".ttf")
    drawn = drawn_pieces(pdf, base)
    want_sentence = expected_pieces(font_name, sentence)
    want_name = expected_pieces(font_name, name)
    # Every piece drawn is a word as HarfBuzz shapes it, and every word is drawn
    # (the name appears more than once on the form, so as sets).
    assert set(drawn) == set(want_sentence + want_name), f"{script}: glyphs differ from HarfBuzz's"
    # The narrative's words in a row: reading order, or on a right-to-left line, reversed
    # (the sentence fits on one line).
    row = want_sentence if font_name not in fonts.RTL_FONTS else want_sentence[::-1]
    n = len(row)
    assert any(drawn[i:i + n] == row for i in range(len(drawn) - n + 1)), f"{script}: words out of order"

    # (b) the text comes back.
    text = run(require("pdftotext"), "-enc", "UTF-8", str(path), "-")
    narrative = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert squash(narrative) == squash(sentence)
    assert not [c for c in text if unicodedata.category(c) == "Co"]  # no private-use codes leak out
    page1 = run(require("pdftotext"), "-enc", "UTF-8", "-f", "1", "-l", "1", str(path), "-")
    assert squash(name) in squash(page1)

    # (c) ink where the narrative is.
    assert ink_between_markers(path, tmp_path / f"{script}.png") > 500


def test_the_comparison_fails_for_unshaped_glyphs():
    """The glyph check can fail: the cmap's glyphs for क्ष (what reportlab alone
    draws) are not HarfBuzz's conjunct."""
    path = fonts.font_folder() / fonts.FONT_FILES["EVR-Devanagari"]
    font = hb.Font(hb.Face(hb.Blob.from_file_path(str(path))))
    unshaped = tuple(_outline_key(font, font.get_nominal_glyph(ord(c))) for c in "क्ष")
    assert [unshaped] != expected_pieces("EVR-Devanagari", "क्ष")


def test_mixed_scripts_in_one_paragraph_wrap_without_splitting_clusters(tmp_path):
    words = [SAMPLES[s][2] for s in ("Devanagari", "Thai", "Khmer", "Tamil")]
    narrative = f"{BEGIN}\nThe witness said: " + " ".join(words * 3) + f"\n{END}"
    path = tmp_path / "mixed.pdf"
    path.write_bytes(render_statement(content(narrative, "Ann EXAMPLE"), TEMPLATES, OFFICER))
    text = run(require("pdftotext"), "-enc", "UTF-8", str(path), "-")
    got = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert squash(got) == squash(narrative.split("\n")[1])


def test_a_long_thai_run_breaks_between_clusters_only():
    """Thai has no spaces between words: a run wider than the line breaks
    between clusters (a consonant keeps its vowel and tone marks)."""
    phrase = "ผู้ใหญ่บ้านเห็นชายสองคนวิ่งหนีไป" * 6
    lines, _ = fonts.break_lines([(phrase, fonts.TextStyle(11))], 200)
    assert len(lines) > 2
    assert "".join(ln.logical for ln in lines) == phrase
    for ln in lines[1:]:
        assert unicodedata.category(ln.logical[0]) != "Mn", ln.logical[:3]  # no line starts with a mark
        assert ln.width <= 200 + 0.01


def test_widths_are_harfbuzz_widths():
    style = fonts.TextStyle(11)
    word = "क्षत्रिय"
    assert style.fonts.width(word, 11) == pytest.approx(fonts.shaped("EVR-Devanagari", word).width * 11)
    (line,), _ = fonts.break_lines([(word, style)], 500)
    assert [r.font for r in line.runs] == ["EVR-Devanagari"]
    assert line.width == pytest.approx(style.fonts.width(word, 11))


# -- characters no font has -----------------------------------------------------------------


def test_undrawable_names_each_character_once():
    text = "Adlam 𞤀𞤀, private \ue000, hieroglyph 𓀀, melting 🫠; fine: क्ष ผู้ 😀 \ufffd Łódź 李\t\n"
    assert fonts.undrawable(text) == [
        "U+1E900 ADLAM CAPITAL LETTER ALIF",
        "U+E000 (private use character)",
        "U+13000 EGYPTIAN HIEROGLYPH A001",
        "U+1FAE0 MELTING FACE",
    ]
    assert fonts.undrawable("invoice\u202egnp.exe a\x07b") == [
        "U+202E RIGHT-TO-LEFT OVERRIDE", "U+0007 (control character)"]
    assert fonts.undrawable("") == []
    flag_of_wales = "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f"
    assert fonts.undrawable(f"Zofia \u200dX\u200c {flag_of_wales}") == []


def _complete(narrative: str, name: str) -> StatementContent:
    """A statement ready to sign (tests/ui/test_statement_flow.py fills the rest), with this name and narrative."""
    from tests.ui.test_statement_flow import complete_fields

    base = StatementContent(fields={"statement_of": name, "age": "Over 18", "postcode": "TS1 1AA"}, narrative=narrative)
    return complete_fields(TEMPLATES, base)


def _signature() -> WitnessSignature:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (60, 20), "white").save(buf, "PNG")
    return WitnessSignature(SignatureKind.DRAWN, buf.getvalue(), datetime(2026, 12, 1, 10, 0))


def test_signing_refuses_a_character_no_font_has_but_drafting_keeps_it(session):
    statements = session.statements
    opened = statements.open_standalone()
    draft = _complete("I was called 𞤀𞤣𞤤𞤢𞤥 by him and he wrote \ue000 on the door.", "Ann EXAMPLE")
    assert statements.save(opened.id, draft) is not None  # drafting is allowed
    assert render_statement(draft, TEMPLATES, OFFICER).startswith(b"%PDF-")  # and so is a draft PDF
    with pytest.raises(Refused) as refused:
        statements.sign(opened.id, draft, _signature())
    message = str(refused.value)
    assert "U+1E900 ADLAM CAPITAL LETTER ALIF" in message
    assert "U+E000 (private use character)" in message
    assert statements.repo.signed(opened.id) is None
    # The same statement in a shipped script signs.
    fixed = _complete("I was called क्षितिज श्रीवास्तव by him.", "ক্ষমা চক্রবর্তী")
    signed = statements.sign(opened.id, fixed, _signature())
    assert signed.signed is not None and signed.signed.valid


def test_the_refusal_comes_before_the_witness_signs(session):
    """The pad opens only after ``signing_preview``: it refuses first, naming the character."""
    draft = _complete("He wrote \ue000 on the door.", "Ann EXAMPLE")
    with pytest.raises(Refused, match="U\\+E000"):
        session.statements.signing_preview(draft)
    assert session.statements.signing_preview(_complete("He wrote on the door.", "Ann EXAMPLE")).pages == 1


def test_an_undrawable_character_in_a_header_field_is_refused_too(session):
    statements = session.statements
    opened = statements.open_standalone()
    draft = _complete("Nothing unusual in the narrative.", "Ann 𓀀 EXAMPLE")
    with pytest.raises(Refused, match="U\\+13000 EGYPTIAN HIEROGLYPH A001"):
        statements.sign(opened.id, draft, _signature())


def test_a_name_in_the_bold_continuation_heading_is_shaped_too(tmp_path):
    """Page 2 is headed "Continuation of statement of NAME" in bold: the bold
    Noto font is shaped like the regular one."""
    _, name, _ = SAMPLES["Devanagari"]
    narrative = "\n".join(f"Line {i} of the account." for i in range(40))  # two statement pages
    pdf = render_statement(content(narrative, name), TEMPLATES, OFFICER)
    path = tmp_path / "continuation.pdf"
    path.write_bytes(pdf)
    drawn = drawn_pieces(pdf, "NotoSansDevanagari-Bold")
    assert set(drawn) == set(expected_pieces("EVR-Devanagari-Bold", name))
    page2 = run(require("pdftotext"), "-enc", "UTF-8", "-f", "2", "-l", "2", str(path), "-")
    assert squash("Continuation of statement of " + name) in squash(page2)
