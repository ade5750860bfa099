"""Fonts for statement PDFs, and turning any text into lines that are safe to draw.

A witness may be called Zofia Wiśniewska, Siân ap Dafydd, محمد الحسيني or 李明,
and a statement may quote a text message with emoji in it. This module embeds
Unicode TrueType fonts from ``resources/fonts`` (see its README for sources and
licences) and draws every character with the first font of a fallback chain
that has a glyph for it:

    DejaVu Sans           Latin (Polish, Welsh ...), Greek, Cyrillic, symbols
    Noto Naskh Arabic     Arabic script (tried first for Arabic letters)
    Droid Sans Fallback   Chinese, Japanese, Korean
    Symbola               emoji and other symbols (monochrome)
    Noto Sans <script>    Devanagari, Bengali, Gurmukhi, Gujarati, Tamil, Sinhala,
                          Thai, Khmer, Ethiopic, Hebrew, Armenian, Georgian
                          (each tried first for its own script's letters)

The Noto Sans script fonts are shaped with HarfBuzz (``uharfbuzz``): their
scripts join letters into conjuncts, move vowel signs before or around their
consonant and stack marks, which reportlab cannot do, since it draws each
character with the one glyph the font's cmap gives it. A piece of such text is
shaped once (cached), measured by HarfBuzz's advances for line breaking, and
drawn glyph by glyph at HarfBuzz's positions (:func:`draw_glyphs`), with a text
layer that gives the typed characters back. Thai and Khmer, written without
spaces between words, are broken only at spaces, or between clusters when a
run is wider than the line (no dictionary word breaking). Hebrew with vowel
points (niqqud) draws right, but ``pdftotext`` splits the points from their
letters, as it does for vocalised Arabic; unpointed Hebrew round-trips.

A character no font has is drawn as U+FFFD (the replacement character), so it
is visible rather than silently lost, in a draft. :func:`undrawable` names
such characters so that signing can refuse them: a signed statement must show
every character as the witness gave it.

Text is never parsed as markup: it is measured and drawn with
``canvas.drawString`` (shaped scripts: as glyph codes in hex strings), so
``<img src=...>`` or ``&amp;`` are just characters.
:func:`sanitize` decides what happens to characters that could hide or reorder
text (see its docstring).

Right-to-left text: reportlab's own bidi support needs ``rlbidi``, which is not
on PyPI, and its shaping needs ``uharfbuzz``. Instead Arabic letters are shaped
to their contextual presentation forms with ``arabic-reshaper`` (MIT) and
lines are put into visual order with the Unicode Bidirectional Algorithm from
``python-bidi`` (LGPL-3.0; its pure-Python ``bidi.algorithm``, which gives the
embedding levels needed to mirror brackets and to place vowel marks). Lines
are broken in logical order first and each line is then reordered, as the
algorithm requires; a paragraph whose first strong character is right-to-left
is right-aligned. Vowel marks (harakat) are centred over their letter from the
glyph outlines, since without OpenType positioning a font's own mark placement
is wrong. The PDF text layer keeps the glyphs' Unicode values, so ``pdftotext``
gives the text back in logical order, as presentation forms, which NFKC
normalisation turns back into plain letters; brackets in right-to-left runs
come back mirrored and vowel marks before their letter (extraction tools do not
undo either), so only unvocalised text round-trips exactly.
"""

from __future__ import annotations

import re
import struct
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import cast

import arabic_reshaper
import uharfbuzz as hb
from bidi import algorithm as _uba
from bidi import get_base_level
from bidi.mirror import MIRRORED
from reportlab.lib.rl_accel import fp_str
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import SUBSETN, TTFont, makeToUnicodeCMap

REPLACEMENT = "\ufffd"

# -- the fonts ----------------------------------------------------------------------------

FONT_FILES: dict[str, str] = {  # name registered with reportlab -> file in resources/fonts
    "EVR-Sans": "DejaVuSans.ttf",
    "EVR-Sans-Bold": "DejaVuSans-Bold.ttf",
    "EVR-Naskh": "NotoNaskhArabic-Regular.ttf",
    "EVR-Naskh-Bold": "NotoNaskhArabic-Bold.ttf",
    "EVR-CJK": "DroidSansFallbackFull.ttf",
    "EVR-Symbols": "Symbola_hint.ttf",
}
# Scripts whose letters need OpenType shaping (conjuncts, reordered vowels, stacked
# marks) or that DejaVu lacks: script -> (Noto Sans file stem, the characters the
# script's font is tried first for). Each is shaped with HarfBuzz (see :func:`shaped`).
SHAPED_SCRIPTS: dict[str, tuple[str, str]] = {
    "Devanagari": ("NotoSansDevanagari", "\u0900-\u097f\ua8e0-\ua8ff\u1cd0-\u1cff"),
    "Bengali": ("NotoSansBengali", "\u0980-\u09ff"),
    "Gurmukhi": ("NotoSansGurmukhi", "\u0a00-\u0a7f"),
    "Gujarati": ("NotoSansGujarati", "\u0a80-\u0aff"),
    "Tamil": ("NotoSansTamil", "\u0b80-\u0bff"),
    "Sinhala": ("NotoSansSinhala", "\u0d80-\u0dff"),
    "Thai": ("NotoSansThai", "\u0e00-\u0e7f"),
    "Khmer": ("NotoSansKhmer", "\u1780-\u17ff\u19e0-\u19ff"),
    "Ethiopic": ("NotoSansEthiopic", "\u1200-\u139f\u2d80-\u2ddf\uab00-\uab2f"),
    "Hebrew": ("NotoSansHebrew", "\u0590-\u05ff\ufb1d-\ufb4f"),
    "Armenian": ("NotoSansArmenian", "\u0530-\u058f\ufb13-\ufb17"),
    "Georgian": ("NotoSansGeorgian", "\u10a0-\u10ff\u1c90-\u1cbf\u2d00-\u2d2f"),
}
for _script, (_stem, _) in SHAPED_SCRIPTS.items():
    FONT_FILES[f"EVR-{_script}"] = f"{_stem}-Regular.ttf"
    FONT_FILES[f"EVR-{_script}-Bold"] = f"{_stem}-Bold.ttf"
SHAPED = frozenset(n for n in FONT_FILES if n.removeprefix("EVR-").removesuffix("-Bold") in SHAPED_SCRIPTS)
# Fonts whose script is written right to left: HarfBuzz shapes them in that direction.
RTL_FONTS = frozenset(("EVR-Hebrew", "EVR-Hebrew-Bold"))
# Any character of a shaped script: lines without one take the old, faster path.
_SHAPED_SCRIPT = re.compile("[" + "".join(r for _, r in SHAPED_SCRIPTS.values()) + "]")
# Noto Naskh's letters are small beside DejaVu Sans at the same size: scale them to match.
SCALE = {"EVR-Naskh": 1.15, "EVR-Naskh-Bold": 1.15}
REGULAR_CHAIN = ("EVR-Sans", "EVR-Naskh", "EVR-CJK", "EVR-Symbols",
                 *(f"EVR-{s}" for s in SHAPED_SCRIPTS))
BOLD_CHAIN = ("EVR-Sans-Bold", "EVR-Naskh-Bold", "EVR-CJK", "EVR-Symbols",
              *(f"EVR-{s}-Bold" for s in SHAPED_SCRIPTS))
PRIMARY_FONT = "EVR-Sans"

_ARABIC_FONT_INDEX = 1  # in both chains: tried first for Arabic-script characters
_registered = False
_register_lock = threading.Lock()


# Codes standing for shaped glyphs (see _TTFont.glyph_code): Supplementary Private
# Use Area-A, which typed text never reaches (sanitize() replaces private-use characters).
_GLYPH_CODES = 0xF0000


class _TTFont(TTFont):
    """reportlab's TrueType font with a right ToUnicode map, able to draw any glyph.

    reportlab 4/5 writes each subset's ToUnicode entries as ``<%04X>``, which
    cuts emoji and CJK Extension B characters (U+1F600 comes out as U+1F60,
    so text extraction and copy-paste give the wrong character). Entries above
    U+FFFF are written here as UTF-16 surrogate pairs, as the PDF
    specification requires.

    reportlab draws characters through the font's cmap, but a shaped script
    draws glyphs the cmap does not reach (a conjunct, a half form, a mark moved
    lower under a tall letter). :meth:`glyph_code` gives each (glyph, text)
    pair a private code that reportlab's subsetting maps to that glyph, and
    whose ToUnicode entry is the text, so ``pdftotext`` and copy-paste return
    what was typed, not private-use characters.
    """

    def __init__(self, name: str, filename: str):
        super().__init__(name, filename)
        self._glyph_codes: dict[tuple[int, str, float], int] = {}
        self._code_text: dict[int, str] = {}
        self._codes_lock = threading.Lock()

    def glyph_code(self, gid: int, text: str, advance: float) -> int:
        """A character code that draws glyph ``gid`` and extracts as ``text`` ('' for nothing).

        ``advance`` (1/1000 em) becomes the code's width in the PDF, which
        viewers use to place the next glyph and to tell words apart.
        """
        key = (gid, text, round(advance, 3))
        code = self._glyph_codes.get(key)
        if code is None:
            with self._codes_lock:
                code = self._glyph_codes.get(key)
                if code is None:
                    code = _GLYPH_CODES + len(self._glyph_codes)
                    if code > 0x10FFFD:
                        raise ValueError("too many distinct shaped glyphs for one font")
                    self.face.charToGlyph[code] = gid
                    self.face.charWidths[code] = advance
                    self._code_text[code] = text
                    self._glyph_codes[key] = code
        return code

    def addObjects(self, doc):
        state = self.state.get(doc)
        subsets = [list(s) for s in state.subsets] if state is not None else []
        super().addObjects(doc)  # (drops the state)
        for n, subset in enumerate(subsets):
            if max(subset, default=0) <= 0xFFFF:
                continue
            base = b"".join((SUBSETN(n), b"+", self.face.name, self.face.subfontNameX)).decode("pdfdoc")
            stream = doc.idToObject.get("toUnicodeCMap:" + base)
            if stream is not None:
                stream.content = _to_unicode_cmap(base, subset, self._code_text)


def _to_unicode_cmap(fontname: str, subset: Sequence[int], texts: dict[int, str] | None = None) -> str:
    text = makeToUnicodeCMap(fontname, subset)
    head, _, rest = text.partition("beginbfchar\n")
    body, _, tail = rest.partition("\nendbfchar")
    if len(subset) != len(body.split("\n")):
        raise ValueError("unexpected ToUnicode CMap layout from reportlab")
    texts = texts or {}
    entries = []
    for i, v in enumerate(subset):
        target = texts.get(v, chr(v))
        if target:  # a glyph that only part of an /ActualText span stands for has no entry
            entries.append(f"<{i:02X}> <{target.encode('utf-16-be').hex().upper()}>")
    head = head.rstrip().rpartition("\n")[0] + f"\n{len(entries)} "  # the entry count
    return head + "beginbfchar\n" + "\n".join(entries) + "\nendbfchar" + tail


def font_folder() -> Path:
    """``resources/fonts`` of the source tree, or of the PyInstaller bundle when frozen."""
    from ..resources import resource_dir

    return resource_dir("fonts")


def _our_font(name: str) -> _TTFont:
    """A font that register_fonts() registered: always one of ours."""
    return cast(_TTFont, pdfmetrics.getFont(name))


def register_fonts(folder: Path | None = None) -> None:
    """Register the statement fonts with reportlab, once per process."""
    global _registered
    with _register_lock:
        if _registered:
            return
        folder = folder or font_folder()
        for name, file in FONT_FILES.items():
            path = folder / file
            if not path.is_file():
                raise FileNotFoundError(f"The statement font {file} is missing from {folder}.")
            pdfmetrics.registerFont(_TTFont(name, str(path)))
        _registered = True


# -- what gets drawn ------------------------------------------------------------------------

# Zero-width characters with a legitimate use in typed text: joiners for Arabic
# and Persian shaping, direction marks for neutral characters, soft hyphens, a
# byte order mark at the start of pasted text. They take part in shaping and in
# the bidi algorithm where relevant and are never drawn.
INVISIBLE = frozenset(
    "\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))  # variation selectors (emoji/text style)
)
# Explicit embeddings, overrides and isolates: they could make the PDF show
# text in another order than it was typed. Shown as U+FFFD, so the reader can
# see that something was there.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
TAB = "    "
_NEWLINES = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
# Emoji subdivision flags (England, Scotland, Wales) are a black flag followed by
# invisible tag characters: keep the flag, drop the tags. Tags anywhere else are
# replaced (they can carry hidden text).
_TAG_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
_translate_cache: dict[str, str | None] = {}


def _char_policy(ch: str) -> str | None:
    """What one character becomes: None to keep it, else its replacement."""
    if ch == "\n":
        return None
    if ch == "\t":
        return TAB
    if ch in INVISIBLE:
        return None
    if ch in BIDI_CONTROLS:
        return REPLACEMENT
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cs", "Co", "Cn"):  # controls, lone surrogates, private use, unassigned
        return REPLACEMENT
    if cat == "Cf":  # other format characters (tags, invisible operators, ...)
        return REPLACEMENT
    return None


def sanitize(text: str) -> str:
    """The text as it will be drawn, in logical order, before shaping.

    - CR LF, CR, VT, FF, NEL, U+2028 and U+2029 become a newline; a tab becomes
      four spaces.
    - Other C0 and C1 control characters (NUL included), lone surrogates,
      private-use and unassigned code points become U+FFFD: visible, so a
      reader can see the typed text held something that cannot be shown.
    - Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)
      become U+FFFD, so they cannot reorder the text around them; other
      invisible format characters (tag characters, invisible operators) too.
    - Joiners, direction marks, soft hyphens, variation selectors and the byte
      order mark (``INVISIBLE``) are kept for shaping and bidi and not drawn.
    """
    text = _NEWLINES.sub("\n", text)
    text = _TAG_FLAG.sub("\U0001f3f4", text)
    table: dict[int, str] = {}
    for ch in set(text):
        if ch not in _translate_cache:
            _translate_cache[ch] = _char_policy(ch)
        repl = _translate_cache[ch]
        if repl is not None:
            table[ord(ch)] = repl
    return text.translate(table) if table else text


_UNNAMED = {"Cc": "control character", "Co": "private use character", "Cn": "unassigned code point",
            "Cs": "lone surrogate"}


def describe(ch: str) -> str:
    """``U+1E900 ADLAM CAPITAL LETTER ALIF``: how a refusal names a character."""
    name = unicodedata.name(ch, "") or f"({_UNNAMED.get(unicodedata.category(ch), 'no name')})"
    return f"U+{ord(ch):04X} {name}"


def undrawable(text: str) -> list[str]:
    """The characters of ``text`` a statement PDF would not show as typed, named
    by :func:`describe`, each once, in the order they first appear.

    These are the characters the renderer draws as U+FFFD: those no bundled
    font has (a script not shipped, a newer emoji), private-use and unassigned
    code points, control characters, bidi embeddings and overrides, and other
    invisible format characters such as tags. A draft may hold them (the
    replacement character shows where they are); signing refuses them, so a
    signed statement never differs silently from what the witness gave.
    Newlines, tabs and the invisible characters in ``INVISIBLE`` are fine.
    No side effects beyond loading the bundled fonts once (their character maps).
    """
    text = _TAG_FLAG.sub("\U0001f3f4", _NEWLINES.sub("\n", text))
    chains = (chain(REGULAR_CHAIN), chain(BOLD_CHAIN))  # a name appears in bold headings too
    seen: set[str] = set()
    out: list[str] = []
    for ch in text:
        if ch in seen:
            continue
        seen.add(ch)
        if ch == "\n" or ch in INVISIBLE:
            continue
        policy = _char_policy(ch)
        if policy == REPLACEMENT or (policy is None and not all(c.covers(ch) for c in chains)):
            out.append(describe(ch))
    return out


# -- Arabic shaping and bidi --------------------------------------------------------------

_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefc]")
# Characters of right-to-left scripts (Hebrew, Arabic, Syriac, Thaana, NKo, ...)
# and the direction marks: a line without any is drawn in logical order as is.
_RTL = re.compile(
    "[\u0590-\u08ff\u200f\u061c\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]"
)
_reshaper = arabic_reshaper.ArabicReshaper(
    configuration={"delete_harakat": False, "support_zwj": True}
)


def shape(text: str) -> str:
    """Arabic letters to their contextual presentation forms (logical order kept)."""
    if not _ARABIC.search(text):
        return text
    return _reshaper.reshape(text)


def base_direction(text: str) -> int:
    """0 for a left-to-right paragraph, 1 for right-to-left (its first strong character)."""
    if not _RTL.search(text):
        return 0
    return get_base_level(text)


def visual_order(chars: str, base_level: int) -> tuple[list[int], list[int]]:
    """Indices of ``chars`` (one line, logical order) in display order, and each
    character's resolved embedding level (odd: right-to-left).

    Unicode Bidirectional Algorithm rules W1-I2 from python-bidi, then L1
    (trailing whitespace to the paragraph level) and L2 (reversals) here.
    Combining marks in right-to-left runs are left before their base (L3 is
    not applied): :func:`_runs` draws each one centred over the letter that
    follows it. Mirroring (L4) is :func:`mirrored_at`.
    """
    storage = _uba.get_empty_storage()
    storage["base_level"] = base_level
    storage["base_dir"] = ("L", "R")[base_level]
    _uba.get_embedding_levels(chars, storage)
    _uba.explicit_embed_and_overrides(storage)
    _uba.resolve_weak_types(storage)
    _uba.resolve_neutral_types(storage, False)
    _uba.resolve_implicit_levels(storage, False)
    resolved = storage["chars"]
    if len(resolved) != len(chars):  # X9 removed something: sanitize() should have prevented it
        raise ValueError("bidi: characters of class BN must be removed before reordering")
    levels = [c["level"] for c in resolved]
    # L1: trailing whitespace goes back to the paragraph level.
    i = len(chars) - 1
    while i >= 0 and unicodedata.bidirectional(chars[i]) in ("WS", "BN", "S"):
        levels[i] = base_level
        i -= 1
    order = list(range(len(chars)))
    if not levels:
        return order, levels
    highest = max(levels)
    odd = [lv for lv in levels if lv % 2]
    lowest_odd = min(odd) if odd else highest + 1
    # L2: from the highest level down to the lowest odd level, reverse every run at or above it.
    for level in range(highest, lowest_odd - 1, -1):
        start = None
        for pos in range(len(order) + 1):
            if pos < len(order) and levels[order[pos]] >= level:
                if start is None:
                    start = pos
            elif start is not None:
                order[start:pos] = order[start:pos][::-1]
                start = None
    return order, levels


def mirrored_at(ch: str, level: int) -> str:
    """L4: a mirrored glyph for brackets and the like in right-to-left runs."""
    if level % 2:
        return MIRRORED.get(ch, ch)
    return ch


# -- shaping with HarfBuzz ------------------------------------------------------------------


@dataclass(frozen=True)
class Shaped:
    """One piece of text shaped by HarfBuzz, ready to draw left to right.

    All lengths are in 1/1000 em (PDF glyph space), so at size ``s`` points a
    length ``v`` is ``v * s / 1000`` points. ``clusters`` are in drawing order:
    (first glyph, number of glyphs, start and end of the cluster's characters in
    the piece). A cluster is what HarfBuzz will not split: a conjunct with its
    vowel signs, a letter with its marks.
    """

    text: str
    gids: tuple[int, ...]
    advances: tuple[float, ...]
    x_offsets: tuple[float, ...]
    y_offsets: tuple[float, ...]
    clusters: tuple[tuple[int, int, int, int], ...]
    width: float  # at 1 pt

    def cluster_widths(self) -> list[tuple[int, int, float]]:
        """(start, end, width at 1 pt) of each cluster's characters."""
        return [(start, end, sum(self.advances[first:first + count]) / 1000.0)
                for first, count, start, end in self.clusters]


_hb_fonts: dict[str, hb.Font] = {}
_hb_lock = threading.Lock()


def _hb_font(name: str) -> hb.Font:
    """The HarfBuzz font for a registered statement font, from the same bytes reportlab embeds."""
    font = _hb_fonts.get(name)
    if font is None:
        with _hb_lock:
            font = _hb_fonts.get(name)
            if font is None:
                register_fonts()
                face = hb.Face(hb.Blob(getattr(_our_font(name).face, "_ttf_data")))  # reportlab keeps the file's bytes
                font = _hb_fonts[name] = hb.Font(face)  # scale = units per em
    return font


@lru_cache(maxsize=16384)
def shaped(font_name: str, text: str) -> Shaped:
    """``text`` (logical order, one script) shaped with HarfBuzz in ``font_name``.

    Cached per piece of text: a statement repeats its words (and its header on
    every page), and a paragraph is measured again when its layout changes.
    Default-ignorable characters (joiners after they have done their work,
    direction marks, variation selectors) are removed rather than drawn.
    """
    font = _hb_font(font_name)
    buf = hb.Buffer()
    buf.add_codepoints([ord(c) for c in text])
    buf.guess_segment_properties()
    if font_name in RTL_FONTS:
        buf.direction = "rtl"
    buf.flags = hb.BufferFlags.REMOVE_DEFAULT_IGNORABLES
    hb.shape(font, buf)
    per_em = 1000.0 / font.face.upem
    infos, positions = buf.glyph_infos, buf.glyph_positions
    gids = tuple(i.codepoint for i in infos)
    advances = tuple(p.x_advance * per_em for p in positions)
    # Cluster values are character indices; a cluster's text runs to the next larger value.
    starts = sorted({i.cluster for i in infos})
    end_of = dict(zip(starts, starts[1:] + [len(text)], strict=True))
    clusters = []
    first = 0
    for n in range(1, len(infos) + 1):
        if n == len(infos) or infos[n].cluster != infos[first].cluster:
            c = infos[first].cluster
            clusters.append((first, n - first, c, end_of[c]))
            first = n
    return Shaped(
        text, gids, advances,
        tuple(p.x_offset * per_em for p in positions),
        tuple(p.y_offset * per_em for p in positions),
        tuple(clusters), sum(advances) / 1000.0,
    )


# -- measuring and choosing fonts ---------------------------------------------------------


class FontChain:
    """The fonts of one style (regular or bold), in fallback order."""

    def __init__(self, names: Sequence[str]):
        register_fonts()
        self.names = tuple(names)
        faces = self._faces = [_our_font(n).face for n in self.names]
        self._ink: dict[tuple[int, str], tuple[float, float] | None] = {}
        self._cmaps = [{c for c, g in f.charToGlyph.items() if g and c < _GLYPH_CODES} for f in faces]
        self._widths = [(f.charWidths, f.defaultWidth) for f in faces]
        self.scales = [SCALE.get(n, 1.0) for n in self.names]
        self._choice: dict[str, tuple[int, float]] = {}  # char -> (font index, width per 1 pt)
        self.primary_cover = frozenset(chr(c) for c in self._cmaps[0]) - INVISIBLE
        self._advance = _Advances(self)
        self.shaped = frozenset(i for i, n in enumerate(self.names) if n in SHAPED)
        # The font each shaped script is tried first for, as Noto Naskh is for Arabic.
        self._preferred = [
            (re.compile(f"[{ranges}]"), i)
            for i, n in enumerate(self.names) if n in SHAPED
            for script, (_, ranges) in SHAPED_SCRIPTS.items()
            if n.removeprefix("EVR-").removesuffix("-Bold") == script
        ]

    def _pick(self, ch: str) -> tuple[int, float]:
        code = ord(ch)
        order: Iterable[int] = range(len(self.names))
        if _ARABIC_SCRIPT.match(ch):
            order = (_ARABIC_FONT_INDEX, *(i for i in order if i != _ARABIC_FONT_INDEX))
        elif _SHAPED_SCRIPT.match(ch):
            first = next((i for pattern, i in self._preferred if pattern.match(ch)), None)
            if first is not None:
                order = (first, *(i for i in order if i != first))
        for i in order:
            if code in self._cmaps[i]:
                widths, default = self._widths[i]
                return i, widths.get(code, default) * self.scales[i] / 1000.0
        return self.choose(REPLACEMENT)  # drawn as U+FFFD (every chain's first font has it)

    def choose(self, ch: str) -> tuple[int, float]:
        """(font index or -1 for "not drawn", advance width at 1 pt)."""
        got = self._choice.get(ch)
        if got is None:
            if ch in INVISIBLE:
                got = (-1, 0.0)
            else:
                got = self._pick(ch)
            self._choice[ch] = got
        return got

    def has(self, index: int, ch: str) -> bool:
        return index >= 0 and ord(ch) in self._cmaps[index]

    def ink(self, index: int, ch: str) -> tuple[float, float] | None:
        """Left and right edge of a glyph's outline, in 1/1000 em (None: no outline)."""
        key = (index, ch)
        if key not in self._ink:
            self._ink[key] = _glyph_x_bounds(self._faces[index], ord(ch))
        return self._ink[key]

    def hangs_right(self, index: int, ch: str) -> bool:
        """A zero-width mark whose ink reaches right of its origin (made for OpenType placement,
        like Arabic marks), rather than hanging back over the letter before (Latin accents)."""
        ink = self.ink(index, ch) if index >= 0 else None
        return ink is not None and ink[1] > 0

    def centre_over(self, index: int, mark: str, base_advance: float, size: float) -> float | None:
        """Where to draw ``mark`` (from the base letter's left edge) to centre it over the base."""
        ink = self.ink(index, mark) if index >= 0 else None
        if ink is None:
            return None
        centre = (ink[0] + ink[1]) / 2 * self.scales[index] / 1000.0
        return (base_advance / 2 - centre) * size

    def covers(self, ch: str) -> bool:
        """Whether some font of the chain has a glyph for ``ch`` (so it is not drawn as U+FFFD)."""
        code = ord(ch)
        return any(code in cmap for cmap in self._cmaps)

    def width(self, text: str, size: float) -> float:
        if not _SHAPED_SCRIPT.search(text):
            return sum(map(self._advance.__getitem__, text)) * size
        total = 0.0
        for font, start, end in self.segments(text):
            piece = text[start:end]
            if font in self.shaped:
                name = self.names[font]
                total += shaped(name, piece).width * self.scales[font]
            else:
                total += sum(map(self._advance.__getitem__, piece))
        return total * size

    def segments(self, text: str) -> list[tuple[int, int, int]]:
        """Split text into (font index, start, end) pieces, each drawn with one font.

        A piece in a shaped font is shaped as a whole, so it holds everything
        that must shape together: the script's letters and marks, joiners and
        other invisible characters (HarfBuzz uses or removes them), and
        punctuation and digits the font has that follow them (a danda after
        Bengali stays in the Bengali font, as a browser would draw it).
        Spaces always end a piece, so a word is shaped the same when it is
        measured alone and when it is drawn in its line. Right-to-left fonts
        take no such followers: what follows in the line's visual order would
        precede in logical order, and measuring and drawing must agree.
        """
        out: list[tuple[int, int, int]] = []
        cur = -2
        start = 0
        for i, ch in enumerate(text):
            font = self.choose(ch)[0]
            if font < 0:  # invisible: belongs to the piece it is in
                continue
            if (font != cur and cur in self.shaped and self.names[cur] not in RTL_FONTS
                    and not unicodedata.category(ch).startswith(("L", "Z")) and self.has(cur, ch)):
                font = cur
            if font != cur:
                if cur != -2:  # (invisible characters before the first piece join it)
                    out.append((cur, start, i))
                    start = i
                cur = font
        if text:
            out.append((-1 if cur == -2 else cur, start, len(text)))
        return out

    def units(self, text: str) -> list[tuple[str, float]]:
        """Text cut where a line may break inside a word, with each unit's width at 1 pt:
        characters, or in shaped scripts whole clusters (a conjunct, a letter with its marks)."""
        if not _SHAPED_SCRIPT.search(text):
            return [(ch, self._advance[ch]) for ch in text]
        out: list[tuple[str, float]] = []
        for font, start, end in self.segments(text):
            piece = text[start:end]
            if font in self.shaped:
                result = shaped(self.names[font], piece)
                scale = self.scales[font]
                for c_start, c_end, width in sorted(result.cluster_widths()):
                    out.append((piece[c_start:c_end], width * scale))
            else:
                out.extend((ch, self._advance[ch]) for ch in piece)
        return out


def _glyph_x_bounds(face, code: int) -> tuple[float, float] | None:
    """xMin and xMax of a TrueType glyph (from its ``glyf`` header), in 1/1000 em."""
    try:
        gid = face.charToGlyph[code]
        start, end = face.glyphPos[gid], face.glyphPos[gid + 1]
        if end <= start:
            return None
        offset = face.get_table_pos("glyf")[0] + start
        _, x_min, _, x_max, _ = struct.unpack(">hhhhh", face._ttf_data[offset:offset + 10])
        return face._pdfScale(x_min), face._pdfScale(x_max)
    except (AttributeError, KeyError, IndexError, struct.error):
        return None


class _Advances(dict):
    """char -> advance width at 1 pt, filled on first use (``map`` over it is fast)."""

    def __init__(self, fonts: FontChain):
        super().__init__()
        self._fonts = fonts

    def __missing__(self, ch: str) -> float:
        w = self[ch] = self._fonts.choose(ch)[1]
        return w


_chains: dict[tuple[str, ...], FontChain] = {}


def chain(names: Sequence[str] = REGULAR_CHAIN) -> FontChain:
    key = tuple(names)
    if key not in _chains:
        _chains[key] = FontChain(key)
    return _chains[key]


# -- styles, runs and lines ---------------------------------------------------------------


@dataclass(frozen=True)
class TextStyle:
    size: float = 11.0
    bold: bool = False

    @property
    def fonts(self) -> FontChain:
        return chain(BOLD_CHAIN if self.bold else REGULAR_CHAIN)


@dataclass(frozen=True)
class Run:
    """Characters drawn with one font at one size, in visual order.

    ``offset`` shifts where the run is drawn without moving the pen: a
    combining mark placed over a letter. ``glyphs`` is set for a run in a
    shaped script: then ``text`` is in logical order and the glyphs, not the
    characters, are drawn.
    """

    font: str
    size: float
    text: str
    width: float
    offset: float = 0.0
    glyphs: Shaped | None = None


@dataclass(frozen=True)
class Line:
    runs: tuple[Run, ...]
    width: float
    logical: str  # the line's characters in logical order (for re-layout and tests)


_DIRECTION_MARKS = frozenset("\u200e\u200f\u061c")
# Zero width non-joiner and joiner choose between a conjunct, a half form or a
# visible virama in Indic scripts, so they are kept for HarfBuzz.
JOINERS = frozenset("\u200c\u200d")
_DROP = INVISIBLE - _DIRECTION_MARKS - JOINERS
_DROP_TABLE = {ord(c): None for c in _DROP}
_JOINER_TABLE = {ord(c): None for c in JOINERS}

Span = tuple[str, TextStyle]  # text (logical order, sanitized or not) and its style

_BREAK_SPACE = " \u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u205f\u3000"
_CJK = (
    "\u2e80-\u2fff\u3001-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"
    "\u3200-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0003ffff"
)
# A token is a run of breaking spaces, one CJK character (a line may break
# between any two), or a run of anything else (a word).
_TOKEN = re.compile(f"[{_BREAK_SPACE}]+|[{_CJK}]|[^{_BREAK_SPACE}{_CJK}]+")


def prepare(spans: Sequence[Span]) -> tuple[list[Span], int]:
    """Sanitize and shape each span; return them with the paragraph's base direction."""
    out = []
    for text, style in spans:
        text = shape(sanitize(text).replace("\n", " "))
        # Drop the invisible characters the bidi algorithm would remove (class BN),
        # keeping the direction marks, and the joiners for HarfBuzz (right-to-left
        # lines drop those in _finish; Arabic joiners have done their work in shape()).
        if not _DROP.isdisjoint(text):
            text = text.translate(_DROP_TABLE)
        out.append((text, style))
    return out, base_direction("".join(t for t, _ in out))


def break_lines(spans: Sequence[Span], width: float, *, prepared: bool = False) -> tuple[list[Line], int]:
    """Lay a paragraph (one or more styled spans, no newlines) out in lines of at most ``width``.

    Returns the lines (each in visual order, ready to draw) and the paragraph
    direction (0 left-to-right, 1 right-to-left: the caller aligns right).
    Spaces typed inside a line are kept; spaces at a line break are dropped.
    A word wider than the line is broken between characters.
    """
    if not prepared:
        spans, direction = prepare(spans)
    else:
        direction = base_direction("".join(t for t, _ in spans))
    width = max(width, 1.0)
    lines: list[list[tuple[str, TextStyle]]] = []
    current: list[tuple[str, TextStyle]] = []
    current_w = 0.0
    pending: list[tuple[str, TextStyle, float]] = []  # spaces waiting for the next word

    def flush() -> None:
        nonlocal current, current_w
        lines.append(current)
        current = []
        current_w = 0.0

    for text, style in spans:
        fonts = style.fonts
        size = style.size
        for m in _TOKEN.finditer(text):
            tok = m.group()
            w = fonts.width(tok, size)
            if tok[0] in _BREAK_SPACE:
                if current or not lines:  # keep spaces inside a line and at the paragraph start
                    pending.append((tok, style, w))
                continue
            space_w = sum(p[2] for p in pending)
            if current and current_w + space_w + w > width:
                flush()
                pending = []
                space_w = 0.0
            for p in pending:
                current.append((p[0], p[1]))
            current_w += space_w
            pending = []
            if current_w + w <= width:
                current.append((tok, style))
                current_w += w
                continue
            # A word longer than the line: break it between characters.
            piece: list[str] = []
            piece_w = 0.0
            for ch, cw in fonts.units(tok):  # characters, or clusters in shaped scripts
                cw *= size
                if piece and current_w + piece_w + cw > width:
                    current.append(("".join(piece), style))
                    flush()
                    piece, piece_w = [], 0.0
                piece.append(ch)
                piece_w += cw
            if piece:
                current.append(("".join(piece), style))
                current_w += piece_w
    if current or not lines:
        flush()
    return [_finish(segments, direction) for segments in lines], direction


def _finish(segments: list[tuple[str, TextStyle]], direction: int) -> Line:
    """One line's segments (logical order) to runs in visual order."""
    logical = "".join(t for t, _ in segments)
    runs: list[Run] = []
    if not _RTL.search(logical) and direction == 0:
        for style, group in groupby(segments, key=itemgetter(1)):
            runs.extend(_runs("".join(t for t, _ in group), style))
        return _merge(runs, logical)
    # Right-to-left: reorder the characters of the whole line, keeping each one's style.
    # Joiners are of bidi class BN, which visual_order() cannot take.
    segments = [(t.translate(_JOINER_TABLE), st) for t, st in segments]
    logical = "".join(t for t, _ in segments)
    styles: list[TextStyle] = []
    for text, style in segments:
        styles.extend([style] * len(text))
    order, levels = visual_order(logical, direction)
    visual = [(mirrored_at(logical[i], levels[i]), styles[i], levels[i] % 2 == 1) for i in order]
    for style, visual_group in groupby(visual, key=itemgetter(1)):
        items = list(visual_group)
        runs.extend(_runs("".join(c for c, _, _ in items), style, [rtl for _, _, rtl in items]))
    return _merge(runs, logical)


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Me")


def _runs(text: str, style: TextStyle, rtl: Sequence[bool] | None = None) -> list[Run]:
    """Split text (already in visual order) into runs: shaped pieces (see
    :meth:`FontChain.segments`) and, for the other fonts, :func:`_char_runs`."""
    fonts = style.fonts
    if not _SHAPED_SCRIPT.search(text):
        return _char_runs(text, style, rtl)
    runs: list[Run] = []
    for font, start, end in fonts.segments(text):
        piece = text[start:end]
        if font not in fonts.shaped:
            runs.extend(_char_runs(piece, style, None if rtl is None else rtl[start:end]))
            continue
        name = fonts.names[font]
        if name in RTL_FONTS:
            piece = piece[::-1]  # a right-to-left piece in visual order: back to logical order
        glyphs = shaped(name, piece)
        size = style.size * fonts.scales[font]
        runs.append(Run(name, size, piece, glyphs.width * size, glyphs=glyphs))
    return runs


def _char_runs(text: str, style: TextStyle, rtl: Sequence[bool] | None = None) -> list[Run]:
    """Split text (already in visual order) by the font that draws each character.

    Combining marks: in a right-to-left run a mark comes before its letter and
    is centred over the letter that follows; in a left-to-right run, a mark
    drawn for GPOS positioning (ink to the right of its origin, as Arabic marks
    are) is centred over the letter before it, and others (Latin accents, made
    to hang back over the letter just drawn) are drawn as they come.
    """
    fonts = style.fonts
    size = style.size
    if set(text) <= fonts.primary_cover and not _ARABIC_SCRIPT.search(text) and not any(
        map(_is_mark, set(text))
    ):
        return [Run(fonts.names[0], size, text, fonts.width(text, size))] if text else []
    runs: list[Run] = []
    cur_font = -2
    buf: list[str] = []
    buf_w = 0.0
    prev_base: tuple[int, str] | None = None  # font and character of the last letter drawn

    def flush() -> None:
        nonlocal buf, buf_w
        if buf:
            runs.append(Run(fonts.names[cur_font], size * fonts.scales[cur_font], "".join(buf),
                            buf_w * size))
        buf, buf_w = [], 0.0

    n = len(text)
    for i, ch in enumerate(text):
        font, w = fonts.choose(ch)
        if font < 0:
            continue  # invisible
        if _is_mark(ch) and w == 0.0:
            if rtl is not None and rtl[i]:
                base = next((text[j] for j in range(i + 1, n) if not _is_mark(text[j])), None)
                if base is not None:
                    base_font, base_w = fonts.choose(base)
                    if base_font >= 0 and fonts.has(base_font, ch):
                        font = base_font
                    offset = fonts.centre_over(font, ch, base_w, size)
                    if offset is not None:
                        flush()
                        runs.append(Run(fonts.names[font], size * fonts.scales[font], ch, 0.0, offset))
                        continue
            elif prev_base is not None:
                base_font, base = prev_base
                if fonts.has(base_font, ch):
                    font = base_font
                if fonts.hangs_right(font, ch):
                    base_w = fonts.choose(base)[1]
                    offset = fonts.centre_over(font, ch, base_w, size)
                    if offset is not None:
                        flush()
                        runs.append(Run(fonts.names[font], size * fonts.scales[font], ch, 0.0,
                                        offset - base_w * size))
                        continue
        elif not fonts.has(font, ch):
            ch = REPLACEMENT
        else:
            prev_base = (font, ch)
        if not fonts.has(font, ch):
            font, w = fonts.choose(REPLACEMENT)
            ch = REPLACEMENT
        if font != cur_font:
            flush()
            cur_font = font
        buf.append(ch)
        buf_w += w
    flush()
    return runs


def _merge(runs: list[Run], logical: str) -> Line:
    merged: list[Run] = []
    for r in runs:
        last = merged[-1] if merged else None
        if (last is not None and last.font == r.font and last.size == r.size
                and not last.offset and not r.offset and last.width and r.width
                and last.glyphs is None and r.glyphs is None):
            merged[-1] = Run(r.font, r.size, last.text + r.text, last.width + r.width)
        else:
            merged.append(r)
    return Line(tuple(merged), sum(r.width for r in merged), logical)


def draw_line(canvas, line: Line, x: float, y: float) -> None:
    """Draw a line's runs from ``x`` (its left edge) on the baseline ``y``."""
    for run in line.runs:
        if run.glyphs is not None:
            draw_glyphs(canvas, run, x, y)
        elif run.text.strip(" ") == "" and not run.offset:
            pass  # spaces between words in other fonts: a gap is enough (readers infer the space)
        else:
            canvas.setFont(run.font, run.size)
            canvas.drawString(x + run.offset, y, run.text)
        x += run.width


def draw_glyphs(canvas, run: Run, x: float, y: float) -> None:
    """Draw a shaped run's glyphs where HarfBuzz put them, in one text object.

    Each glyph is shown through a private code (:meth:`_TTFont.glyph_code`)
    whose PDF width is the glyph's own advance; ``TJ`` adjustments put each
    glyph at HarfBuzz's position (advances, kerning, marks moved over or under
    their letter) and a text rise lifts or lowers a mark.

    Text extraction: a cluster drawn as one glyph (a letter, a conjunct) maps
    that glyph to all its characters through ToUnicode. A piece with any
    cluster of several glyphs (a vowel sign drawn before its consonant, a vowel
    in two parts, stacked Thai marks, Khmer subscripts) is wrapped whole in one
    ``/ActualText`` span holding its characters, so ``pdftotext`` and
    copy-paste give them in the order typed. (Per-glyph mappings were tried
    and fail in poppler: marks stacked at one position read as duplicated text
    and split the word.) poppler takes a span's box to end where the last
    glyph's PDF width ends; when that glyph is a mark (no width), a space
    would appear after the word, so the last glyph gets a code whose width
    reaches the end of the piece. Glyphs are shown in HarfBuzz's order.
    Right-to-left pieces (Hebrew) are never
    spanned: poppler would put a span's characters in left-to-right order and
    then reverse them with the line; their marks map one glyph to a character.
    """
    font = _our_font(run.font)
    assert run.glyphs is not None
    plan = _plan(run.font, run.glyphs)
    doc = canvas._doc
    size = run.size
    ops = [f"BT 1 0 0 1 {fp_str(x)} {fp_str(y)} Tm"]
    if plan.actual:
        ops.append(f"/Span <</ActualText <FEFF{plan.actual}>>> BDC")
    tj: list[str] = []
    rise = 0.0
    k = 0
    for subset, chunk in font.splitString(plan.codes, doc):  # (a new subset every 256 glyphs)
        if tj:
            ops.append("[" + " ".join(tj) + "] TJ")
            tj = []
        ops.append(f"{font.getSubsetInternalName(subset, doc)} {fp_str(size)} Tf")
        for byte in chunk:
            if plan.y_offsets is not None and plan.y_offsets[k] * size / 1000.0 != rise:
                rise = plan.y_offsets[k] * size / 1000.0
                if tj:
                    ops.append("[" + " ".join(tj) + "] TJ")
                    tj = []
                ops.append(f"{fp_str(rise)} Ts")
            if plan.moves[k]:
                tj.append(plan.moves[k])
            tj.append(_HEX[byte])
            k += 1
    if tj:
        ops.append("[" + " ".join(tj) + "] TJ")
    if plan.actual:
        ops.append("EMC")
    if rise:
        ops.append("0 Ts")
    ops.append("ET")
    canvas._code.append(" ".join(ops))


_HEX = [f"<{b:02X}>" for b in range(256)]


@dataclass(frozen=True)
class _Plan:
    """How to show one shaped piece, worked out once per piece (see :func:`draw_glyphs`)."""

    codes: str  # each glyph's private code, as a character, for reportlab's splitString
    moves: tuple[str, ...]  # per glyph: the TJ number that moves the pen to it ('' for none)
    y_offsets: tuple[float, ...] | None  # 1/1000 em; None when no glyph is raised or lowered
    actual: str | None  # the piece's text in UTF-16BE hex when it needs an /ActualText span


@lru_cache(maxsize=16384)
def _plan(font_name: str, g: Shaped) -> _Plan:
    font = _our_font(font_name)
    hb_font = _hb_font(font_name)
    per_em = 1000.0 / hb_font.face.upem
    n = len(g.gids)
    widths = [hb_font.get_glyph_h_advance(gid) * per_em for gid in g.gids]
    pen = [0.0] * n  # where each glyph's origin goes, 1/1000 em from the piece's start
    acc = 0.0
    for k in range(n):
        pen[k] = acc + g.x_offsets[k]
        acc += g.advances[k]
    spanned = font_name not in RTL_FONTS and any(count > 1 for _, count, _, _ in g.clusters)
    if spanned and n:
        widths[-1] = max(widths[-1], acc - pen[-1])  # the span's box reaches the piece's end
    codes = [0] * n
    for first, count, start, end in g.clusters:
        text = g.text[start:end]
        for k in range(first, first + count):
            own = text if count == 1 else _glyph_text(font_name, g.gids[k])
            codes[k] = font.glyph_code(g.gids[k], own, widths[k])
    moves = []
    at = 0.0  # where the PDF's pen is after the glyph before (its origin plus its PDF width)
    for k in range(n):
        move = pen[k] - at
        moves.append(fp_str(-move) if abs(move) > 1e-6 else "")
        at = pen[k] + widths[k]
    return _Plan(
        "".join(map(chr, codes)), tuple(moves),
        g.y_offsets if any(g.y_offsets) else None,
        g.text.encode("utf-16-be").hex().upper() if spanned else None,
    )


def _glyph_text(font_name: str, gid: int) -> str:
    """The character a glyph stands for by the font's cmap, or '' (a conjunct part, a
    positional form): only used inside /ActualText spans, for tools that ignore them."""
    return _reverse_cmap(font_name).get(gid, "")


@cache
def _reverse_cmap(font_name: str) -> dict[int, str]:
    face = _our_font(font_name).face
    out: dict[int, str] = {}
    for code, gid in sorted(face.charToGlyph.items(), reverse=True):
        if code < _GLYPH_CODES:
            out[gid] = chr(code)  # (the lowest code wins)
    return out

