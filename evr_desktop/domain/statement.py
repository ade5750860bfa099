"""Statement templates as plain data, and what a statement still lacks.

The templates (``resources/templates``, loaded and validated by
``evr_desktop.statement.templates``) describe the MG11 witness statement, the
structure officers use inside the narrative, the prompts for each offence type,
ADVOKATE, the Victims' Code checklist and the Victim Personal Statement. This
module holds them as frozen dataclasses and decides completeness: a pure
function, no I/O, no Qt.

Values in a statement (``statement_fields``, keyed by MG11 field id):

- ``text`` / ``multiline``: ``str``
- ``date``: ``datetime.date`` or an ISO string (``2024-05-03``)
- ``datetime``: ``datetime.datetime`` or an ISO string (``2024-05-03T21:30``)
- ``choice``: one of the field's ``choices`` (``str``)
- ``yes_no``: ``"yes"`` or ``"no"``; ``yes_no_na``: ``"yes"``, ``"no"`` or ``"n/a"``
- ``boolean``: ``bool`` (a tick box; ``False`` is an answer, absent is not)

Prompts are ticked by their qualified key, ``"<set id>.<prompt id>"`` (for
example ``"assault.injury_size"``, ``"victims_code.written_confirmation"``,
``"advokate.distance"``), because the same prompt id may appear in several
sets (``previous_incidents``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime

from .statement_doc import StatementContent, StatementType

SCHEMA = "evr-template/1"

YES = "yes"
NO = "no"
NOT_APPLICABLE = "n/a"
ANSWER_LABELS: Mapping[str, str] = {YES: "Yes", NO: "No", NOT_APPLICABLE: "N/A"}


class FieldType(enum.StrEnum):
    TEXT = "text"
    MULTILINE = "multiline"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"
    YES_NO = "yes_no"
    YES_NO_NA = "yes_no_na"
    BOOLEAN = "boolean"

    @property
    def is_text(self) -> bool:
        return self in (FieldType.TEXT, FieldType.MULTILINE)

    @property
    def is_answer(self) -> bool:
        """Answered by picking one value rather than by writing text."""
        return self in (FieldType.CHOICE, FieldType.YES_NO, FieldType.YES_NO_NA, FieldType.BOOLEAN)


FIXED_ANSWERS: Mapping[FieldType, tuple[str, ...]] = {
    FieldType.YES_NO: (YES, NO),
    FieldType.YES_NO_NA: (YES, NO, NOT_APPLICABLE),
}


@dataclass(frozen=True)
class Field:
    """One box on the MG11. ``restricted`` fields are on the rear page: never disclosed."""

    id: str
    label: str
    type: FieldType
    required: bool
    restricted: bool
    max_length: int | None = None  # text and multiline only
    choices: tuple[str, ...] = ()  # choice only
    help: str = ""
    in_words: str = ""  # the subject of a completeness sentence: "The witness's occupation"
    required_unless: str | None = None  # id of a boolean/yes_no field that lifts the requirement
    default: str | bool | None = None

    @property
    def answers(self) -> tuple[str, ...]:
        """The values a choice-like field accepts (empty for text, dates and booleans)."""
        if self.type is FieldType.CHOICE:
            return self.choices
        return FIXED_ANSWERS.get(self.type, ())

    @property
    def subject(self) -> str:
        return self.in_words or f"The '{self.label}' field"


@dataclass(frozen=True)
class Section:
    id: str
    label: str
    rear_page: bool  # the restricted page: police and prosecution only
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Mg11Template:
    form: str
    title: str
    statutory_basis: str
    declaration: str  # contains "{pages}"
    page_numbering: str  # contains "{page}" and "{pages}"
    continuation_heading: str  # contains "{name}"
    signature_label: str
    witnessed_by_label: str
    sections: tuple[Section, ...]

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(f for s in self.sections for f in s.fields)

    @property
    def restricted_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.restricted)

    def field(self, field_id: str) -> Field:
        for f in self.fields:
            if f.id == field_id:
                return f
        raise KeyError(f"The MG11 template has no field {field_id!r}.")

    def declaration_text(self, pages: int) -> str:
        return self.declaration.replace("{pages}", str(pages))

    def page_text(self, page: int, pages: int) -> str:
        return self.page_numbering.replace("{pages}", str(pages)).replace("{page}", str(page))

    def continuation_text(self, name: str) -> str:
        return self.continuation_heading.replace("{name}", name)


@dataclass(frozen=True)
class NarrativePart:
    """One of the five parts: summary, who was there, scene, account, closure."""

    id: str
    label: str
    guidance: tuple[str, ...]


@dataclass(frozen=True)
class ReminderItem:
    id: str
    label: str
    text: str


@dataclass(frozen=True)
class Reminder:
    """A memory aid for the officer (5WH, TED): shown, never ticked."""

    id: str
    label: str
    guidance: tuple[str, ...]
    items: tuple[ReminderItem, ...]


@dataclass(frozen=True)
class NarrativeTemplate:
    parts: tuple[NarrativePart, ...]
    reminders: tuple[Reminder, ...]


@dataclass(frozen=True)
class Prompt:
    """Something the officer should cover, ticked when covered."""

    set_id: str
    id: str
    label: str  # short, used in lists and completeness sentences
    text: str  # what to ask or cover, for the officer
    help: str = ""
    required_for_signing: bool = False  # must be ticked before signing, when its set applies
    letter: str = ""  # ADVOKATE only

    @property
    def key(self) -> str:
        return f"{self.set_id}.{self.id}"


class PromptKind(enum.StrEnum):
    OFFENCE = "prompts"
    ADVOKATE = "advokate"
    VICTIMS_CODE = "victims_code"
    VPS = "vps"


@dataclass(frozen=True)
class PromptSet:
    """Prompts for one offence type, or ADVOKATE, the Victims' Code or the VPS.

    ``id`` is the offence id (``assault``) for offence sets and the kind
    (``advokate``, ``victims_code``, ``vps``) for the others.
    """

    kind: PromptKind
    id: str
    label: str
    guidance: tuple[str, ...]
    prompts: tuple[Prompt, ...]

    def prompt(self, prompt_id: str) -> Prompt:
        for p in self.prompts:
            if p.id == prompt_id:
                return p
        raise KeyError(f"{self.label} has no prompt {prompt_id!r}.")

    @property
    def required(self) -> tuple[Prompt, ...]:
        return tuple(p for p in self.prompts if p.required_for_signing)


@dataclass(frozen=True)
class TemplateSet:
    mg11: Mg11Template
    narrative: NarrativeTemplate
    offences: tuple[PromptSet, ...]  # sorted by id
    advokate: PromptSet
    victims_code: PromptSet
    vps: PromptSet  # the Victim Personal Statement: a separate MG11
    digest: str = ""  # SHA-256 over the template files, to record which version was used

    @property
    def offence_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.offences)

    def offence(self, offence_id: str) -> PromptSet:
        for s in self.offences:
            if s.id == offence_id:
                return s
        raise KeyError(f"No prompts for the offence type {offence_id!r}.")

    @property
    def prompt_sets(self) -> tuple[PromptSet, ...]:
        return (self.victims_code, *self.offences, self.advokate, self.vps)


def completeness(
    statement_fields: Mapping[str, object],
    narrative: str,
    ticked_prompt_ids: Set[str],
    templates: TemplateSet,
    *,
    offence: str | None = None,
    suspect_identified: bool = False,
    vps: bool = False,
) -> list[str]:
    """What the statement still lacks before the witness signs, one sentence each.

    An empty list means nothing is missing. The order is the order the officer
    would fix things in: the narrative first, then the MG11 fields in form
    order (page 1, then the rear page), then the prompts.

    - Narrative: "The narrative is empty." when it is blank.
    - Fields: a ``required`` field that is absent, ``None`` or blank text gives
      "<subject> is missing." (text, multiline, date, datetime) or "<subject>
      has no answer." (choice, yes/no, yes/no/N/A, boolean), where the subject
      is the field's ``in_words`` ("The witness's occupation", "Consent (c)
      (police access to medical records)"). ``required_unless`` names a tick
      box or yes/no field that, when ticked or "yes", lifts the requirement
      ("No dates to avoid"). Any field that does have a value is also checked:
      an answer outside the allowed values, text over ``max_length`` or a date
      that does not parse is reported in words. Fields not in the template are
      ignored. A value of the wrong Python type is a programming error and
      raises ``TypeError``.
    - Prompts: only prompts flagged ``required_for_signing`` are checked, and
      only in the sets that apply to this statement: the Victims' Code always
      (the entitlements must be explained and noted); the offence's own set
      when ``offence`` is given (its points to prove and safeguarding
      questions; an unknown offence raises ``KeyError``); ADVOKATE only when
      ``suspect_identified``. A Victim Personal Statement (``vps``) needs
      none of these: its own prompts are never required (what to say about
      the impact is the victim's choice), and the Victims' Code is noted on
      the witness statement. Each unticked one gives "<set> prompt
      '<label>' is not marked as covered." Ticks use qualified keys
      (``Prompt.key``); a ticked prompt counts as covered even when the answer
      was "none" (no injuries, nothing taken), which the narrative should say.
    """
    missing: list[str] = []
    if not narrative.strip():
        missing.append("The narrative is empty.")

    for f in templates.mg11.fields:
        value = statement_fields.get(f.id)
        if _is_blank(f, value):
            if f.required and not _lifted(f, statement_fields):
                verb = "has no answer" if f.type.is_answer else "is missing"
                missing.append(f"{f.subject} {verb}.")
            continue
        problem = _value_problem(f, value)
        if problem:
            missing.append(problem)

    sets = prompt_sets(templates, vps=vps, offence=offence, suspect_identified=suspect_identified)
    sets.sort(key=lambda s: s is not templates.victims_code)  # the entitlements are reported first
    for s in sets:
        for p in s.required:
            if p.key not in ticked_prompt_ids:
                missing.append(f"{s.label} prompt '{p.label}' is not marked as covered.")
    return missing


def prompt_sets(
    templates: TemplateSet, *, vps: bool = False, offence: str | None = None, suspect_identified: bool = False
) -> list[PromptSet]:
    """The prompt sets that apply to a statement, in the order the panel shows
    them: for a witness statement the offence's own set (an unknown offence
    raises ``KeyError``), ADVOKATE when a suspect was identified, then the
    Victims' Code; for a Victim Personal Statement only the VPS prompts. The
    panel, the completeness check and signing all ask this one function."""
    if vps:
        return [templates.vps]
    sets = [templates.offence(offence)] if offence is not None else []
    if suspect_identified:
        sets.append(templates.advokate)
    sets.append(templates.victims_code)
    return sets


def missing_before_signing(content: StatementContent, templates: TemplateSet) -> list[str]:
    """``completeness`` for a statement as drafted: the one rule the panel's
    "Before signing" list and the signing service both apply."""
    vps = content.statement_type is StatementType.VPS
    return completeness(
        content.fields, content.narrative, content.ticked_prompts, templates,
        offence=None if vps else content.offence,
        suspect_identified=content.suspect_identified and not vps,
        vps=vps,
    )


def _is_blank(f: Field, value: object) -> bool:
    if value is None:
        return True
    return isinstance(value, str) and not value.strip()


def _lifted(f: Field, values: Mapping[str, object]) -> bool:
    if f.required_unless is None:
        return False
    return values.get(f.required_unless) in (True, YES)


def _value_problem(f: Field, value: object) -> str | None:
    got = type(value).__name__
    if f.type is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise TypeError(f"{f.id}: a boolean field needs a bool, not {got}")
        return None
    if f.type is FieldType.DATE:
        if isinstance(value, datetime) or not isinstance(value, date | str):
            raise TypeError(f"{f.id}: a date field needs a date or ISO string, not {got}")
        if isinstance(value, str) and not _parses(date.fromisoformat, value):
            return f"{f.subject} is not a valid date."
        return None
    if f.type is FieldType.DATETIME:
        if not isinstance(value, datetime | str):
            raise TypeError(f"{f.id}: a datetime field needs a datetime or ISO string, not {got}")
        if isinstance(value, str) and not _parses(datetime.fromisoformat, value):
            return f"{f.subject} is not a valid date and time."
        return None
    if not isinstance(value, str):
        raise TypeError(f"{f.id}: a {f.type.value} field needs a str, not {got}")
    if f.type.is_text:
        if f.max_length is not None and len(value) > f.max_length:
            return f"{f.subject} is longer than {f.max_length} characters."
        return None
    if value not in f.answers:
        allowed = ", ".join(ANSWER_LABELS.get(a, a) for a in f.answers)
        return f"{f.subject} has an answer that is not one of: {allowed}."
    return None


def _parses(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text.strip())
    except ValueError:
        return False
    return True
