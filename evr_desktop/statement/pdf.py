"""The statement, and its restricted rear page, as PDFs laid out as an MG11
(England and Wales witness statement). Two documents, never one file:

    statement = render_statement(content, templates, officer, witness_signature, recording_note=...)
    rear = render_rear_page(content, templates, officer, witness_signature).pdf

Layout (A4):

- **The statement** (what the witness signs and what is disclosed). Every page
  has the classification marking at the top and bottom, the form code (MG11)
  at the top right, and a footer with the witness's signature box (their
  signature image when given), "Signature witnessed by: NAME (COLLAR)" and
  "Page X of Y". Page 1 opens with the title (WITNESS STATEMENT, or VICTIM
  PERSONAL STATEMENT for a VPS, still an MG11), the statutory basis, URN,
  Statement of, Age, Occupation, whether the statement was also visually
  recorded (and ``recording_note`` in small type, e.g. the recording's
  SHA-256), then the declaration with the number of statement pages, the
  witness's signature and the date. The narrative follows and flows onto
  continuation pages headed "Continuation of statement of NAME". A signature
  box follows straight after the last word of the narrative (the last two
  lines are kept with it, so it never stands alone). No rear-page field is
  ever drawn here.
- **The restricted rear page** (its own PDF, for police and prosecution only,
  never disclosed; docs/domain.md: "its own document, never inside the
  statement file"), with the same markings and a "RESTRICTED - FOR POLICE AND
  PROSECUTION ONLY - NOT FOR DISCLOSURE" banner: the witness's name and the
  URN (so it can be matched to its statement), every rear-page field of the
  template with its label and value, consents (a)-(f), the witness's
  signature, and statement taken by / number / station / time and place
  (name, number and station fall back to the officer when blank). The
  bottom right corner of its pages is left free for the officer's digital
  signature box.

**Page counts.** "Y" in "Page X of Y" and N in the declaration ("consisting of
N page(s) each signed by me") count the statement's pages; the rear page
carries its own "Restricted rear page R of S". The counts are only known after
layout, so each document is laid out again with the count of the previous pass
until it is stable (normally two passes; the narrative is measured once and
reused). The count does not depend on the witness's signature, so the
signing flow renders once without it to show the witness the declaration.

**Text is drawn literally.** Nothing the officer or witness typed is parsed as
markup: labels and values are measured and drawn with ``canvas.drawString``
(see ``fonts.py``), so ``<img src=...>``, ``<a href=...>``, ``&`` and
unbalanced tags appear as typed and nothing can load a file or reach the
network. Control characters and bidi overrides are replaced by U+FFFD
(``fonts.sanitize``). Long paragraphs are laid out once in linear time and
split by lines across pages (a 1 MB paragraph takes seconds).

The PDFs' metadata never names the witness: title "Witness statement" (or
"Victim personal statement"; with ": restricted rear page" for the rear page),
subject the form code. Output is compressed and
byte-for-byte reproducible for the same input (reportlab's invariant mode: a
fixed creation date and document ID).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageTemplate,
    Spacer,
)

from ..domain.officer import OfficerIdentity
from ..domain.statement import ANSWER_LABELS, Field, FieldType, Section, TemplateSet
from ..domain.statement_doc import StatementContent, StatementType, WitnessSignature
from . import fonts
from .fonts import Line, Span, TextStyle, break_lines, draw_line, sanitize

PAGE_W, PAGE_H = A4
MARGIN_X = 50.0
TEXT_W = PAGE_W - 2 * MARGIN_X
FOOTER_TOP = 104.0  # the frame ends here; the signature footer is below
FIRST_TOP = PAGE_H - 40.0
CONT_TOP = PAGE_H - 84.0  # below the continuation heading (up to two lines)
REAR_TOP = PAGE_H - 82.0  # below the restricted banner
REAR_BOTTOM = 66.0  # below: the numbering (left) and the officer's signature box (right)
MAX_PASSES = 5

RESTRICTED_BANNER = "RESTRICTED - FOR POLICE AND PROSECUTION ONLY - NOT FOR DISCLOSURE"
REAR_PAGE_NUMBERING = "Restricted rear page {page} of {pages}"
DATE_LABEL = "Date"

NARRATIVE = TextStyle(11)
LABEL = TextStyle(8.5, bold=True)
VALUE = TextStyle(11)
SMALL = TextStyle(7.5)
DECLARATION = TextStyle(9.5)
HEADING = TextStyle(11, bold=True)
REAR_VALUE = TextStyle(10)


@dataclass(frozen=True)
class RenderedStatement:
    pdf: bytes
    statement_pages: int  # the pages the witness signs ("Page X of Y"), N in the declaration

    @property
    def last_statement_page(self) -> int:
        """0-based index of the last signed page: where the officer's digital signature goes."""
        return self.statement_pages - 1


@dataclass(frozen=True)
class RenderedRearPage:
    pdf: bytes
    pages: int  # "Restricted rear page R of S"


def _signature_image(witness_signature: WitnessSignature | None) -> ImageReader | None:
    if witness_signature is None:
        return None
    if not witness_signature.png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("The witness signature image is not a PNG.")
    return ImageReader(io.BytesIO(witness_signature.png))


def render_statement(
    content: StatementContent,
    templates: TemplateSet,
    officer: OfficerIdentity,
    witness_signature: WitnessSignature | None = None,
    *,
    recording_note: str = "",
) -> bytes:
    """The statement as PDF bytes (see the module docstring for the layout)."""
    return render_statement_pages(
        content, templates, officer, witness_signature, recording_note=recording_note
    ).pdf


def render_statement_pages(
    content: StatementContent,
    templates: TemplateSet,
    officer: OfficerIdentity,
    witness_signature: WitnessSignature | None = None,
    *,
    recording_note: str = "",
) -> RenderedStatement:
    """``render_statement``, also saying how many pages it made. The page count
    does not depend on the signature (its boxes have a fixed size), so a render
    without one tells the witness N for the declaration before they sign."""
    fonts.register_fonts()
    doc = _Statement(content, templates, officer, witness_signature, _signature_image(witness_signature),
                     recording_note=recording_note)
    pdf, pages = _settle(doc)
    return RenderedStatement(pdf, pages)


def render_rear_page(
    content: StatementContent,
    templates: TemplateSet,
    officer: OfficerIdentity,
    witness_signature: WitnessSignature | None = None,
) -> RenderedRearPage:
    """The restricted rear page as its own PDF (see the module docstring)."""
    fonts.register_fonts()
    doc = _RearPage(content, templates, officer, witness_signature, _signature_image(witness_signature))
    pdf, pages = _settle(doc)
    return RenderedRearPage(pdf, pages)


# -- flowables ------------------------------------------------------------------------------


def _baseline(leading: float, size: float) -> float:
    """Distance from the top of a line box to its baseline."""
    return leading * 0.5 + size * 0.35


class TextBlock(Flowable):
    """A paragraph drawn literally, split between pages by whole lines.

    ``spans`` are (text, style) pairs laid out together; the text is never
    parsed. ``align`` is "start" (left, or right for a right-to-left
    paragraph) or "center". ``trailer`` draws something of ``trailer_height``
    straight after the last line (the witness's signature after the
    narrative); the last two lines always go with it.
    """

    def __init__(
        self,
        spans: Sequence[Span] = (),
        *,
        leading: float = 15.0,
        align: str = "start",
        space_after: float = 0.0,
        trailer: Callable[[Canvas, float, float, float], None] | None = None,
        trailer_height: float = 0.0,
        lines: list[Line] | None = None,
        direction: int = 0,
        width: float | None = None,
    ):
        super().__init__()
        self.spans = list(spans)
        self.leading = leading
        self.align = align
        self.spaceAfter = space_after
        self.trailer = trailer
        self.trailer_height = trailer_height if trailer else 0.0
        self.lines = lines
        self.direction = direction
        self.laid_width = width
        self._cache: dict[float, tuple[list[Line], int]] = {}  # width -> layout, shared by copies

    def copy(self) -> TextBlock:
        """A fresh flowable for another pass that shares this one's layout.

        reportlab marks flowables as it places them (``_postponed``), so the
        same object cannot go through two builds; the measuring can.
        """
        twin = TextBlock(
            self.spans, leading=self.leading, align=self.align, space_after=self.spaceAfter,
            trailer=self.trailer, trailer_height=self.trailer_height,
            lines=self.lines, direction=self.direction, width=self.laid_width,
        )
        twin._cache = self._cache
        return twin

    def _layout(self, width: float) -> None:
        if self.lines is not None and self.laid_width is not None and abs(self.laid_width - width) < 0.01:
            return
        key = round(width, 2)
        if key not in self._cache:
            if self.lines is not None and not self.spans:  # a split-off part: lay its text out again
                self.spans = [(" ".join(ln.logical for ln in self.lines), NARRATIVE)]
            self._cache[key] = break_lines(self.spans, width)
        self.lines, self.direction = self._cache[key]
        self.laid_width = width

    def wrap(self, availWidth, availHeight):
        self._layout(availWidth)
        assert self.lines is not None  # laid out: reportlab calls wrap() before split() and draw()
        self.width = availWidth
        self.height = len(self.lines) * self.leading + self.trailer_height
        return self.width, self.height

    def _part(self, lines: list[Line], with_trailer: bool) -> TextBlock:
        return TextBlock(
            leading=self.leading, align=self.align,
            space_after=self.spaceAfter if with_trailer or not self.trailer else 0.0,
            trailer=self.trailer if with_trailer else None,
            trailer_height=self.trailer_height if with_trailer else 0.0,
            lines=lines, direction=self.direction, width=self.laid_width,
        )

    def split(self, availWidth, availHeight):
        self._layout(availWidth)
        assert self.lines is not None
        n = len(self.lines)
        fit = int((availHeight + 1e-6) // self.leading)
        if self.trailer:
            if fit >= n:  # the lines fit but the trailer does not: take the last two over with it
                fit = n - min(2, n)
            else:
                fit = min(fit, n - 1)
        if fit <= 0:
            return []
        if fit >= n:
            return [self]
        return [self._part(self.lines[:fit], False), self._part(self.lines[fit:], True)]

    def draw(self):
        assert self.lines is not None
        canv = self.canv
        top = self.height
        for i, line in enumerate(self.lines):
            size = min((r.size for r in line.runs), default=11.0)
            y = top - i * self.leading - _baseline(self.leading, size)
            if self.align == "center":
                x = (self.width - line.width) / 2
            elif self.direction:
                x = self.width - line.width
            else:
                x = 0.0
            draw_line(canv, line, x, y)
        if self.trailer:
            self.trailer(canv, 0.0, self.trailer_height, self.width)


class LabelledValue(Flowable):
    """A form row: a bold label on the left, the value on the right above a rule.

    A blank value leaves an empty ruled line to write on. Rows split between
    pages by value lines when a value is very long.
    """

    def __init__(
        self,
        label: str,
        value: str,
        *,
        label_width: float = 150.0,
        value_style: TextStyle = VALUE,
        leading: float = 14.0,
        label_leading: float = 11.0,
        label_lines: list[Line] | None = None,
        value_lines: list[tuple[Line, int]] | None = None,
        space_after: float = 3.0,
    ):
        super().__init__()
        self.label = label
        self.value = value
        self.label_width = label_width
        self.value_style = value_style
        self.leading = leading
        self.label_leading = label_leading
        self.label_lines = label_lines
        self.value_lines = value_lines  # (line, paragraph direction)
        self.spaceAfter = space_after

    def _layout(self, width: float) -> None:
        if self.label_lines is not None:
            return
        self.label_lines, _ = break_lines([(self.label, LABEL)], self.label_width - 8)
        value_w = width - self.label_width
        self.value_lines = []
        for para in sanitize(self.value).split("\n"):
            lines, direction = break_lines([(para, self.value_style)], value_w)
            self.value_lines.extend((ln, direction) for ln in lines)

    def _heights(self) -> tuple[float, float]:
        assert self.label_lines is not None and self.value_lines is not None  # laid out by wrap()
        label_h = len(self.label_lines) * self.label_leading
        value_h = len(self.value_lines) * self.leading
        return label_h, value_h

    def wrap(self, availWidth, availHeight):
        self._layout(availWidth)
        self.width = availWidth
        self.height = max(self._heights()) + 2.0
        return self.width, self.height

    def split(self, availWidth, availHeight):
        self._layout(availWidth)
        assert self.label_lines is not None and self.value_lines is not None
        fit = int((availHeight - 2.0) // self.leading)
        if len(self.value_lines) <= 4:  # short rows are kept whole
            return []
        if fit <= 0 or fit >= len(self.value_lines) or len(self.label_lines) * self.label_leading > availHeight:
            return []
        first = LabelledValue(
            self.label, "", label_width=self.label_width, value_style=self.value_style,
            leading=self.leading, label_leading=self.label_leading, label_lines=self.label_lines,
            value_lines=self.value_lines[:fit], space_after=0.0,
        )
        rest = LabelledValue(
            self.label, "", label_width=self.label_width, value_style=self.value_style,
            leading=self.leading, label_leading=self.label_leading, label_lines=[], value_lines=self.value_lines[fit:],
            space_after=self.spaceAfter,
        )
        return [first, rest]

    def draw(self):
        assert self.label_lines is not None and self.value_lines is not None
        canv = self.canv
        top = self.height
        for i, line in enumerate(self.label_lines):
            draw_line(canv, line, 0.0, top - i * self.label_leading - _baseline(self.leading, LABEL.size))
        x0 = self.label_width
        value_w = self.width - x0
        canv.setLineWidth(0.4)
        canv.setStrokeGray(0.55)
        for i, (line, direction) in enumerate(self.value_lines):
            y_top = top - i * self.leading
            x = x0 + (value_w - line.width if direction else 0.0)
            draw_line(canv, line, x, y_top - _baseline(self.leading, self.value_style.size))
            canv.line(x0, y_top - self.leading + 1.0, self.width, y_top - self.leading + 1.0)
        canv.setStrokeGray(0)


class Box(Flowable):
    """Something drawn by a callback in a fixed height, full width."""

    def __init__(self, height: float, paint: Callable[[Canvas, float, float, float], None], space_after=0.0):
        super().__init__()
        self.height = height
        self.paint = paint
        self.spaceAfter = space_after

    def wrap(self, availWidth, availHeight):
        self.width = availWidth
        return availWidth, self.height

    def draw(self):
        self.paint(self.canv, 0.0, self.height, self.width)


class Rule(Flowable):
    def __init__(self, space_before=2.0, space_after=6.0, gray=0.3, thickness=0.8):
        super().__init__()
        self.spaceBefore = space_before
        self.spaceAfter = space_after
        self.gray = gray
        self.thickness = thickness

    def wrap(self, availWidth, availHeight):
        self.width = availWidth
        return availWidth, self.thickness

    def draw(self):
        self.canv.setLineWidth(self.thickness)
        self.canv.setStrokeGray(self.gray)
        self.canv.line(0, 0, self.width, 0)
        self.canv.setStrokeGray(0)


# -- values ---------------------------------------------------------------------------------


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def _format_date(d: date) -> str:
    """"3 May 2024": unambiguous, and the same whatever the machine's locale."""
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def value_text(field: Field, value: object) -> str:
    """A field value in words, as printed on the form ("" when blank)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    if field.type is FieldType.BOOLEAN or isinstance(value, bool):
        if isinstance(value, bool):
            return "Yes" if value else "No"
        return ANSWER_LABELS.get(str(value).lower(), str(value))
    if field.type in (FieldType.YES_NO, FieldType.YES_NO_NA):
        return ANSWER_LABELS.get(str(value).strip().lower(), str(value))
    if field.type is FieldType.DATE:
        if isinstance(value, datetime):
            return _format_date(value.date())
        if isinstance(value, date):
            return _format_date(value)
        try:
            return _format_date(date.fromisoformat(str(value).strip()))
        except ValueError:
            return str(value)
    if field.type is FieldType.DATETIME:
        if not isinstance(value, datetime):
            try:
                value = datetime.fromisoformat(str(value).strip())
            except ValueError:
                return str(value)
        return f"{value.hour:02d}:{value.minute:02d} on {_format_date(value.date())}"
    return str(value)


def _rear_heading(section: Section) -> str:
    """A rear-page section's label without its "Rear page (restricted): " prefix."""
    label = section.label
    if ":" in label and label.lower().startswith("rear page"):
        label = label.split(":", 1)[1].strip()
    return label[:1].upper() + label[1:]


# -- the documents --------------------------------------------------------------------------


class _Mg11Document:
    """What the statement and its restricted rear page share: the values, the
    classification and form markings, and the witness's signature box."""

    def __init__(
        self,
        content: StatementContent,
        templates: TemplateSet,
        officer: OfficerIdentity,
        witness_signature: WitnessSignature | None,
        signature: ImageReader | None,
    ):
        self.content = content
        self.templates = templates
        self.mg11 = templates.mg11
        self.officer = officer
        self.witness_signature = witness_signature
        self.signature = signature
        self.fields: Mapping[str, object] = content.fields
        self.name = content.witness_name()
        self.classification = self._classification()
        self.vps = content.statement_type is StatementType.VPS
        self.pages = 1  # the count the previous pass found ("Page X of Y")
        self.laid_out = 0  # pages laid out in this pass

    def _doc(self, buf: io.BytesIO, *, title: str, subject: str, bottom: float) -> BaseDocTemplate:
        return BaseDocTemplate(
            buf,
            pagesize=A4,
            leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=40, bottomMargin=bottom,
            title=title,
            author="",
            subject=subject,
            creator="EVR Desktop",
            invariant=1,
            pageCompression=1,
            initialFontName=fonts.PRIMARY_FONT,
        )

    # -- values

    def _classification(self) -> str:
        value = self.fields.get("classification")
        if isinstance(value, str) and value.strip():
            return value.strip()
        try:
            default = self.mg11.field("classification").default
        except KeyError:
            default = None
        return default if isinstance(default, str) else "OFFICIAL-SENSITIVE"

    def _field_value(self, field_id: str) -> str:
        try:
            f = self.mg11.field(field_id)
        except KeyError:
            return ""
        return value_text(f, self.fields.get(field_id))

    def _label(self, field_id: str, fallback: str) -> str:
        try:
            return self.mg11.field(field_id).label
        except KeyError:
            return fallback

    def _signed_date(self) -> str:
        if self.witness_signature is None:
            return ""
        return _format_date(self.witness_signature.signed_at.date())

    # -- the witness's signature

    def _signature_row(self, canv: Canvas, x: float, top: float, width: float) -> None:
        """Signature box and date (after the declaration, and on the rear page)."""
        _draw_text(canv, self.mg11.signature_label, LABEL, x, top - 9)
        self._signature_box(canv, x + 62, top - 46, 190, 44)
        _draw_text(canv, DATE_LABEL, LABEL, x + 290, top - 9)
        date_text = self._signed_date()
        _draw_text(canv, date_text, VALUE, x + 325, top - 26)
        canv.setLineWidth(0.4)
        canv.line(x + 325, top - 30, x + width, top - 30)

    def _signature_box(self, canv: Canvas, x: float, y: float, w: float, h: float) -> None:
        canv.setLineWidth(0.6)
        canv.setStrokeGray(0.35)
        canv.rect(x, y, w, h, stroke=1, fill=0)
        canv.setStrokeGray(0)
        if self.signature is not None:
            canv.drawImage(self.signature, x + 2, y + 2, w - 4, h - 4, preserveAspectRatio=True,
                           anchor="c", mask="auto")

    def _markings(self, canv: Canvas) -> None:
        mark = TextStyle(10, bold=True)
        _draw_text(canv, self.classification, mark, PAGE_W / 2, PAGE_H - 28, align="center")
        _draw_text(canv, self.classification, mark, PAGE_W / 2, 16, align="center")
        _draw_text(canv, self.mg11.form, TextStyle(10, bold=True), PAGE_W - MARGIN_X, PAGE_H - 28,
                   align="right")


class _Statement(_Mg11Document):
    """The statement the witness signs and that goes for disclosure: header,
    declaration and narrative. Never a rear-page field."""

    def __init__(self, *args, recording_note: str):
        super().__init__(*args)
        self.recording_note = recording_note
        self.title = self.templates.vps.label.upper() if self.vps else self.mg11.title
        self._narrative = self._narrative_flowables()  # measured once, copied for every pass

    def build(self, pages: int, canvasmaker=Canvas) -> tuple[bytes, int]:
        """Lay the statement out believing it has ``pages`` pages; return the
        PDF and the number of pages it really took."""
        self.pages = pages
        self.laid_out = 0
        buf = io.BytesIO()
        doc = self._doc(
            buf, title="Victim personal statement" if self.vps else "Witness statement",
            subject=self.mg11.form, bottom=FOOTER_TOP,
        )
        frame = dict(leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        doc.addPageTemplates([
            PageTemplate(
                id="first", autoNextPageTemplate="cont", onPage=self._statement_page,
                frames=[Frame(MARGIN_X, FOOTER_TOP, TEXT_W, FIRST_TOP - FOOTER_TOP, id="f1", **frame)],
            ),
            PageTemplate(
                id="cont", autoNextPageTemplate="cont", onPage=self._statement_page,
                frames=[Frame(MARGIN_X, FOOTER_TOP, TEXT_W, CONT_TOP - FOOTER_TOP, id="fc", **frame)],
            ),
        ])
        story = [
            *self._header_flowables(pages),
            *(block.copy() for block in self._narrative),
        ]
        doc.build(story, canvasmaker=canvasmaker)
        return buf.getvalue(), self.laid_out

    # -- page 1

    def _header_flowables(self, pages: int) -> list[Flowable]:
        out: list[Flowable] = [
            TextBlock([(self.title, TextStyle(15, bold=True))], leading=20, align="center"),
            TextBlock([(self.mg11.statutory_basis, TextStyle(7.5))], leading=10, align="center",
                      space_after=10),
        ]
        header = next((s for s in self.mg11.sections if not s.rear_page), None)
        for f in header.fields if header else ():
            if f.id == "classification" or f.restricted:
                continue  # the marking is printed at the top and bottom of every page
            out.append(LabelledValue(f.label, value_text(f, self.fields.get(f.id)), label_width=165))
            if f.id == "visually_recorded" and self.recording_note.strip():
                out.append(TextBlock([(self.recording_note, SMALL)], leading=9.5, space_after=3))
        out.append(Rule(space_before=6, space_after=5, gray=0.5, thickness=0.5))
        declaration = TextBlock([(self.mg11.declaration_text(pages), DECLARATION)], leading=12.5,
                                space_after=4)
        out.append(KeepTogether([declaration, Box(48, self._signature_row, space_after=4)]))
        out.append(Rule(space_before=2, space_after=10))
        return out

    # -- narrative

    def _narrative_flowables(self) -> list[TextBlock]:
        paragraphs = sanitize(self.content.narrative).split("\n")
        out = [
            TextBlock([(p, NARRATIVE)], leading=15.0, space_after=3.0 if p.strip() else 0.0)
            for p in paragraphs
        ]
        last = out[-1]
        last.trailer = self._narrative_signature
        last.trailer_height = 54.0
        return out

    def _narrative_signature(self, canv: Canvas, x: float, top: float, width: float) -> None:
        """The witness signs straight after the last word of the narrative."""
        _draw_text(canv, self.mg11.signature_label, LABEL, x, top - 14)
        self._signature_box(canv, x + 62, top - 50, 190, 44)

    # -- page decoration

    def _statement_page(self, canv: Canvas, doc) -> None:
        self.laid_out += 1
        page = self.laid_out
        canv.saveState()
        self._markings(canv)
        if page > 1:
            heading = self.mg11.continuation_text(self.name)
            lines = _fit(heading, TextStyle(11, bold=True), TEXT_W, max_lines=2)
            y = PAGE_H - 54
            for line in lines[:2]:  # an absurdly long name is shown in full on page 1
                draw_line(canv, line, MARGIN_X, y)
                y -= 14
        # footer: signature, witnessed by, page number
        canv.setLineWidth(0.5)
        canv.setStrokeGray(0.5)
        canv.line(MARGIN_X, FOOTER_TOP - 6, PAGE_W - MARGIN_X, FOOTER_TOP - 6)
        canv.setStrokeGray(0)
        _draw_text(canv, self.mg11.signature_label, LABEL, MARGIN_X, FOOTER_TOP - 18)
        self._signature_box(canv, MARGIN_X, 32, 170, 48)
        x_mid = MARGIN_X + 190
        _draw_text(canv, self.mg11.witnessed_by_label + ":", LABEL, x_mid, FOOTER_TOP - 18)
        y = FOOTER_TOP - 36
        for line in _fit(self.officer.display, VALUE, 200, max_lines=3)[:3]:
            draw_line(canv, line, x_mid, y)
            y -= 13
        page_text = self.mg11.page_text(page, self.pages)
        _draw_text(canv, page_text, TextStyle(11, bold=True), PAGE_W - MARGIN_X, FOOTER_TOP - 36,
                   align="right")
        canv.restoreState()


class _RearPage(_Mg11Document):
    """The restricted rear page: the witness's contact details, witness care,
    consents and who took the statement. A document of its own, for police and
    prosecution only, so it can never travel inside the statement."""

    def build(self, pages: int, canvasmaker=Canvas) -> tuple[bytes, int]:
        self.pages = pages
        self.laid_out = 0
        buf = io.BytesIO()
        title = "Victim personal statement" if self.vps else "Witness statement"
        doc = self._doc(buf, title=f"{title}: restricted rear page", subject=f"{self.mg11.form} (restricted)",
                        bottom=REAR_BOTTOM)
        frame = dict(leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        doc.addPageTemplates([
            PageTemplate(
                id="rear", autoNextPageTemplate="rear", onPage=self._rear_page,
                frames=[Frame(MARGIN_X, REAR_BOTTOM, TEXT_W, REAR_TOP - REAR_BOTTOM, id="fr", **frame)],
            ),
        ])
        doc.build(self._rear_flowables(), canvasmaker=canvasmaker)
        return buf.getvalue(), self.laid_out

    def _rear_flowables(self) -> list[Flowable]:
        out: list[Flowable] = [
            LabelledValue(self._label("statement_of", "Statement of"), self.name, label_width=190,
                          value_style=REAR_VALUE, leading=12.5, space_after=1.5),
            LabelledValue(self._label("urn", "URN"), self._field_value("urn"), label_width=190,
                          value_style=REAR_VALUE, leading=12.5, space_after=4),
        ]
        fallbacks = {
            "taken_by_name": self.officer.name,
            "taken_by_number": self.officer.collar,
            "station": self.officer.station,
        }
        for section in self.mg11.sections:
            if not section.rear_page:
                continue
            rows: list[Flowable] = []
            consents = section.id == "consents"
            for f in section.fields:
                value = value_text(f, self.fields.get(f.id)) or fallbacks.get(f.id, "")
                rows.append(LabelledValue(f.label, value, label_width=390 if consents else 190,
                                          value_style=REAR_VALUE, leading=12.5, label_leading=10.0,
                                          space_after=0.8))
            heading = TextBlock([(_rear_heading(section), HEADING)], leading=16)
            head = [Spacer(0, 2), heading, Rule(space_before=0, space_after=3, gray=0.5, thickness=0.5)]
            out.append(KeepTogether([*head, *rows[:2]]))
            out.extend(rows[2:])
            if consents:
                out.append(Spacer(0, 4))
                out.append(Box(48, self._signature_row))
        return out

    def _rear_page(self, canv: Canvas, doc) -> None:
        self.laid_out += 1
        page = self.laid_out
        canv.saveState()
        self._markings(canv)
        # the restricted banner
        canv.setFillGray(0.15)
        canv.rect(MARGIN_X, PAGE_H - 74, TEXT_W, 26, stroke=0, fill=1)
        canv.setFillGray(1)
        _draw_text(canv, RESTRICTED_BANNER, TextStyle(10.5, bold=True), PAGE_W / 2, PAGE_H - 65,
                   align="center")
        canv.setFillGray(0)
        # Bottom left: the bottom right corner is kept free for the officer's
        # digital signature box (signing.BOX_*: 24-62 pt up, 50 pt in).
        text = REAR_PAGE_NUMBERING.format(page=page, pages=self.pages)
        _draw_text(canv, text, TextStyle(9, bold=True), MARGIN_X, 34)
        canv.restoreState()


def _settle(doc: _Statement | _RearPage) -> tuple[bytes, int]:
    """Build until the page count printed ("of Y") is the count laid out."""
    pages = 1
    for _ in range(MAX_PASSES):
        pdf, got = doc.build(pages)
        if got == pages:
            return pdf, pages
        pages = got
    raise RuntimeError(f"The page count did not settle after {MAX_PASSES} passes.")


def _fit(text: str, style: TextStyle, width: float, *, max_lines: int) -> list[Line]:
    """Lines of ``text`` in ``width``, shrinking the type (to 5 pt) to keep within ``max_lines``."""
    size = style.size
    while True:
        lines, _ = break_lines([(text, TextStyle(size, style.bold))], width)
        if len(lines) <= max_lines or size <= 5:
            return lines
        size = max(5.0, size - 0.5)


def _draw_text(canv: Canvas, text: str, style: TextStyle, x: float, y: float, align: str = "left") -> None:
    """One line of text at (x, y); ``align`` says whether x is its left, centre or right."""
    for line in _fit(text, style, TEXT_W, max_lines=1)[:1]:
        if align == "right":
            x -= line.width
        elif align == "center":
            x -= line.width / 2
        draw_line(canv, line, x, y)
