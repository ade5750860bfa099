"""The review text: exactly what the victim's phone shows of a statement before
they sign it there, and what the SHA-256 they sign is computed over
(``domain.phone_signing.review_sha256``).

Built in this one place from the statement's content, by a pure function, so
the text sent to the phone and the text checked at signing cannot drift apart:
``StatementService.sign_remote`` rebuilds it from the content it is about to
sign and compares hashes. Its layout, line by line (``\\n`` only, no trailing
newline)::

    WITNESS STATEMENT                     (or VICTIM PERSONAL STATEMENT)
    URN: 01AB2345626
    Statement of: Alex Invented
    Age if under 18: Over 18
    Occupation: Baker
    This statement was also visually recorded: Yes
                                          (a blank line)
    The narrative, as typed, over as many lines as it has.

The header holds the page-1 fields of the MG11 that the statement PDF prints
(never the classification marking, never a rear-page field: those are not
part of what is disclosed), in the template's order, with values in words as
the PDF prints them (``pdf.value_text``). Every value and the narrative pass
through ``fonts.sanitize``, as the PDF's text does: the phone shows the
characters the PDF will hold (a bidi override or a control character shows as
U+FFFD on both, so it cannot make the phone display something else).
"""

from __future__ import annotations

from ..domain.phone_signing import normalise_text
from ..domain.statement import TemplateSet
from ..domain.statement_doc import StatementContent, StatementType
from .fonts import sanitize
from .pdf import value_text


def review_title(content: StatementContent, templates: TemplateSet) -> str:
    """The document's title as the PDF prints it."""
    if content.statement_type is StatementType.VPS:
        return templates.vps.label.upper()
    return templates.mg11.title


def review_text(content: StatementContent, templates: TemplateSet) -> str:
    """The canonical review text of ``content`` (see the module docstring)."""
    lines = [sanitize(review_title(content, templates))]
    header = next((s for s in templates.mg11.sections if not s.rear_page), None)
    for f in header.fields if header else ():
        if f.id == "classification" or f.restricted:
            continue
        value = sanitize(value_text(f, content.fields.get(f.id))).replace("\n", " ")
        lines.append(f"{f.label}: {value}")
    lines.append("")
    lines.append(sanitize(content.narrative))
    return normalise_text("\n".join(lines))
