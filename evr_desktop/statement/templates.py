"""Load and validate the statement templates in ``resources/templates``.

One JSON file per concern (format: ``resources/templates/README.md``)::

    mg11.json           the MG11 form: header, declaration, rear page, consents
    narrative.json      the five-part narrative structure, 5WH and TED
    advokate.json       ADVOKATE, for any identification of a suspect
    victims_code.json   the Victims' Code entitlements checklist
    vps.json            the Victim Personal Statement
    prompts/<id>.json   one per offence type, discovered: adding one is a data change

Every file is checked against its schema before anything is built from it:
unknown keys are refused (they are usually typos), and every problem raises a
``TemplateError`` naming the file and the path to the offending value, e.g.
``prompts/fraud.json: prompts[3].id: must be snake_case``. The schema checks
are written out here in plain Python on purpose (no schema library).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from typing import Any, NoReturn, TypeVar

from ..domain.statement import (
    FIXED_ANSWERS,
    SCHEMA,
    Field,
    FieldType,
    Mg11Template,
    NarrativePart,
    NarrativeTemplate,
    Prompt,
    PromptKind,
    PromptSet,
    Reminder,
    ReminderItem,
    Section,
    TemplateSet,
)

MAX_FILE_BYTES = 1024 * 1024  # a template is a few KiB; refuse anything near this before parsing
MAX_TEXT_LENGTH = 100_000  # the largest max_length a field may declare
PROMPTS_FOLDER = "prompts"
FILES: dict[str, str] = {  # file name -> kind
    "mg11.json": "mg11",
    "narrative.json": "narrative",
    "advokate.json": "advokate",
    "victims_code.json": "victims_code",
    "vps.json": "vps",
}
ADVOKATE = "ADVOKATE"
T = TypeVar("T")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class TemplateError(ValueError):
    """A template file that cannot be used, with the file and the path to the problem."""

    def __init__(self, file: str, path: str, message: str):
        super().__init__(f"{file}: {path}: {message}" if path else f"{file}: {message}")
        self.file = file
        self.path = path
        self.message = message


def default_folder() -> Path:
    """``resources/templates`` of the source tree, or of the PyInstaller bundle when frozen."""
    from ..resources import resource_dir

    return resource_dir("templates")


def load_templates(folder: Path | None = None) -> TemplateSet:
    """Read, validate and build every template in ``folder`` (default: the shipped ones)."""
    folder = default_folder() if folder is None else Path(folder)
    if not folder.is_dir():
        raise TemplateError(str(folder), "", "the templates folder does not exist")
    digest = hashlib.sha256()
    loaded: dict[str, Any] = {}

    def read(path: Path) -> tuple[_At, Any]:
        at = _At(path.relative_to(folder).as_posix())
        raw, data = _read_json(at, path)
        digest.update(f"{at.file}\0{len(raw)}\0".encode())
        digest.update(raw)
        return at, data

    unexpected = sorted(p.name for p in folder.glob("*.json") if p.name not in FILES)
    if unexpected:
        raise TemplateError(
            unexpected[0], "", f"unexpected template file (expected one of: {', '.join(FILES)}; "
            f"offence prompts go in {PROMPTS_FOLDER}/)"
        )
    for name, kind in FILES.items():
        path = folder / name
        if not path.is_file():
            raise TemplateError(name, "", "missing: every template set needs this file")
        at, data = read(path)
        _check_header(at, data, kind)
        loaded[kind] = _BUILDERS[kind](at, data)

    offences = []
    prompt_files = sorted((folder / PROMPTS_FOLDER).glob("*.json"))
    if not prompt_files:
        raise TemplateError(f"{PROMPTS_FOLDER}/", "", "no offence prompt files (<offence>.json)")
    for path in prompt_files:
        at, data = read(path)
        _check_header(at, data, "prompts")
        offences.append(_offence_prompts(at, data, path.stem))

    return TemplateSet(
        mg11=loaded["mg11"],
        narrative=loaded["narrative"],
        offences=tuple(offences),
        advokate=loaded["advokate"],
        victims_code=loaded["victims_code"],
        vps=loaded["vps"],
        digest=digest.hexdigest(),
    )


# -- reading ------------------------------------------------------------------------------


class _DuplicateKeys(dict[str, Any]):
    """An object in which a key appeared twice; reported with its path when validated."""

    duplicate: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            out = _DuplicateKeys(pairs)
            out.duplicate = key
            return out
        seen[key] = value
    return seen


def _read_json(at: _At, path: Path) -> tuple[bytes, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            at.fail(f"file is {size} bytes, over the 1 MiB limit ({MAX_FILE_BYTES} bytes)")
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        at.fail(f"cannot be read: {e.strerror or e}")
    if len(raw) > MAX_FILE_BYTES:  # grew after stat, or not a regular file
        at.fail(f"file is over the 1 MiB limit ({MAX_FILE_BYTES} bytes)")
    try:
        text = raw.decode("utf-8-sig")  # tolerate the BOM some Windows editors add
    except UnicodeDecodeError as e:
        at.fail(f"not UTF-8 text (bad byte at offset {e.start})")

    def constant(name: str) -> NoReturn:
        at.fail(f"invalid JSON: {name} is not allowed")

    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=constant)
    except json.JSONDecodeError as e:
        at.fail(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")
    except RecursionError:
        at.fail("invalid JSON: nested too deeply")
    return raw, data


# -- checking ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _At:
    """Where a value is: the file and the path inside it (``prompts[3].id``)."""

    file: str
    path: str = ""

    def key(self, name: str) -> _At:
        return _At(self.file, f"{self.path}.{name}" if self.path else name)

    def index(self, i: int) -> _At:
        return _At(self.file, f"{self.path}[{i}]")

    def fail(self, message: str) -> NoReturn:
        raise TemplateError(self.file, self.path, message)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _object(
    at: _At, value: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        at.fail(f"must be an object, not {_json_type(value)}")
    if isinstance(value, _DuplicateKeys):
        at.fail(f"the key {value.duplicate!r} appears more than once")
    known = (*required, *optional)
    for name in value:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            at.key(name).fail("unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    for name in required:
        if name not in value:
            at.fail(f"missing key {name!r}")
    return value


def _string(at: _At, value: Any) -> str:
    if not isinstance(value, str):
        at.fail(f"must be a string, not {_json_type(value)}")
    if not value.strip():
        at.fail("must not be empty")
    return value


def _bool(at: _At, value: Any) -> bool:
    if not isinstance(value, bool):
        at.fail(f"must be true or false, not {_json_type(value)}")
    return value


def _positive_int(at: _At, value: Any, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        at.fail(f"must be a whole number, not {_json_type(value)}")
    if not 1 <= value <= limit:
        at.fail(f"must be between 1 and {limit}")
    return value


def _id(at: _At, value: Any) -> str:
    text = _string(at, value)
    if not _SNAKE.fullmatch(text):
        at.fail(f"must be snake_case (lower-case letters, digits and single underscores): {text!r}")
    return text


def _list(at: _At, value: Any) -> Iterator[tuple[_At, Any]]:
    """The items of a non-empty list, each with its place."""
    if not isinstance(value, list):
        at.fail(f"must be a list, not {_json_type(value)}")
    if not value:
        at.fail("must not be empty")
    for i, item in enumerate(value):
        yield at.index(i), item


def _strings(at: _At, value: Any) -> tuple[str, ...]:
    items = tuple(_string(a, v) for a, v in _list(at, value))
    _unique(at, [(at.index(i), s) for i, s in enumerate(items)], "entry")
    return items


def _unique(at: _At, ids: list[tuple[_At, str]], what: str = "id") -> None:
    first: dict[str, _At] = {}
    for place, ident in ids:
        if ident in first:
            place.fail(f"duplicate {what} {ident!r} (first at {first[ident].path})")
        first[ident] = place


def _optional(
    at: _At, d: dict[str, Any], name: str, read: Callable[[_At, Any], T], default: T
) -> T:
    """``d[name]`` read and checked when present, else the default."""
    return read(at.key(name), d[name]) if name in d else default


def _placeholders(at: _At, value: Any, expected: set[str]) -> str:
    """A text with exactly the ``{placeholders}`` given, each once."""
    text = _string(at, value)
    try:
        names = [name for _, name, _, _ in Formatter().parse(text) if name is not None]
    except ValueError as e:
        at.fail(f"bad placeholder: {e}")
    for name in names:
        if name not in expected:
            at.fail(f"unknown placeholder {{{name}}} (allowed: {', '.join(sorted(expected))})")
    for name in sorted(expected):
        if names.count(name) != 1:
            at.fail(f"must contain the placeholder {{{name}}} exactly once")
    return text


def _check_header(at: _At, data: Any, kind: str) -> None:
    if not isinstance(data, dict):
        at.fail(f"must be a JSON object, not {_json_type(data)}")
    for name in ("schema", "kind"):
        if name not in data:
            at.fail(f"missing key {name!r}")
    if data["schema"] != SCHEMA:
        at.key("schema").fail(f"must be {SCHEMA!r}, not {data['schema']!r}")
    if data["kind"] != kind:
        at.key("kind").fail(f"must be {kind!r} for this file, not {data['kind']!r}")


# -- builders -----------------------------------------------------------------------------


def _mg11(at: _At, d: Any) -> Mg11Template:
    _object(at, d, ("schema", "kind", "form", "title", "statutory_basis", "declaration",
                    "page_numbering", "continuation_heading", "signature_label",
                    "witnessed_by_label", "sections"))
    sections = tuple(_section(a, s) for a, s in _list(at.key("sections"), d["sections"]))
    _unique(at, [(at.key("sections").index(i), s.id) for i, s in enumerate(sections)])
    field_places = [
        (at.key("sections").index(i).key("fields").index(j), f)
        for i, s in enumerate(sections) for j, f in enumerate(s.fields)
    ]
    _unique(at, [(place.key("id"), f.id) for place, f in field_places])
    by_id = {f.id: f for _, f in field_places}
    for place, f in field_places:
        if f.required_unless is None:
            continue
        other = by_id.get(f.required_unless)
        where = place.key("required_unless")
        if other is None or other is f:
            where.fail(f"names no other field of this form: {f.required_unless!r}")
        if other.type not in (FieldType.BOOLEAN, FieldType.YES_NO):
            where.fail(f"must name a boolean or yes_no field; {other.id!r} is {other.type.value}")
    labels = ("form", "title", "statutory_basis", "signature_label", "witnessed_by_label")
    text = {name: _string(at.key(name), d[name]) for name in labels}
    return Mg11Template(
        form=text["form"],
        title=text["title"],
        statutory_basis=text["statutory_basis"],
        declaration=_placeholders(at.key("declaration"), d["declaration"], {"pages"}),
        page_numbering=_placeholders(
            at.key("page_numbering"), d["page_numbering"], {"page", "pages"}
        ),
        continuation_heading=_placeholders(
            at.key("continuation_heading"), d["continuation_heading"], {"name"}
        ),
        signature_label=text["signature_label"],
        witnessed_by_label=text["witnessed_by_label"],
        sections=sections,
    )


def _section(at: _At, d: Any) -> Section:
    _object(at, d, ("id", "label", "rear_page", "fields"))
    rear = _bool(at.key("rear_page"), d["rear_page"])
    return Section(
        id=_id(at.key("id"), d["id"]),
        label=_string(at.key("label"), d["label"]),
        rear_page=rear,
        fields=tuple(_field(a, f, rear) for a, f in _list(at.key("fields"), d["fields"])),
    )


def _field(at: _At, d: Any, rear_page: bool) -> Field:
    _object(at, d, ("id", "label", "type", "required", "restricted"),
            ("max_length", "choices", "help", "in_words", "required_unless", "default"))
    field_id = _id(at.key("id"), d["id"])
    raw_type = _string(at.key("type"), d["type"])
    try:
        ftype = FieldType(raw_type)
    except ValueError:
        types = ", ".join(t.value for t in FieldType)
        at.key("type").fail(f"must be one of: {types}; not {raw_type!r}")
    restricted = _bool(at.key("restricted"), d["restricted"])
    if restricted != rear_page:
        # The flag is what keeps a field out of disclosure: it must agree with the page.
        at.key("restricted").fail(
            "must be true: every field on the rear page is restricted" if rear_page
            else "must be false: only rear-page fields are restricted"
        )

    max_length = None
    if ftype.is_text:
        if "max_length" not in d:
            at.fail(f"missing key 'max_length' ({ftype.value} fields need one)")
        max_length = _positive_int(at.key("max_length"), d["max_length"], MAX_TEXT_LENGTH)
    elif "max_length" in d:
        at.key("max_length").fail("only text and multiline fields have a max_length")

    choices: tuple[str, ...] = ()
    if ftype is FieldType.CHOICE:
        if "choices" not in d:
            at.fail("missing key 'choices' (choice fields need them)")
        choices = _strings(at.key("choices"), d["choices"])
    elif "choices" in d:
        at.key("choices").fail("only choice fields have choices")

    default: str | bool | None = None
    if "default" in d:
        where = at.key("default")
        if ftype is FieldType.BOOLEAN:
            default = _bool(where, d["default"])
        elif ftype in (FieldType.DATE, FieldType.DATETIME):
            where.fail(f"{ftype.value} fields have no default")
        else:
            default = _string(where, d["default"])
            allowed = choices if ftype is FieldType.CHOICE else FIXED_ANSWERS.get(ftype)
            if allowed is not None and default not in allowed:
                where.fail(f"must be one of: {', '.join(allowed)}")
            if max_length is not None and len(default) > max_length:
                where.fail(f"is longer than max_length ({max_length})")

    return Field(
        id=field_id,
        label=_string(at.key("label"), d["label"]),
        type=ftype,
        required=_bool(at.key("required"), d["required"]),
        restricted=restricted,
        max_length=max_length,
        choices=choices,
        help=_optional(at, d, "help", _string, ""),
        in_words=_optional(at, d, "in_words", _string, ""),
        required_unless=_optional(at, d, "required_unless", _id, None),
        default=default,
    )


def _narrative(at: _At, d: Any) -> NarrativeTemplate:
    _object(at, d, ("schema", "kind", "parts", "reminders"))
    parts = []
    for a, p in _list(at.key("parts"), d["parts"]):
        _object(a, p, ("id", "label", "guidance"))
        parts.append(NarrativePart(
            id=_id(a.key("id"), p["id"]),
            label=_string(a.key("label"), p["label"]),
            guidance=_strings(a.key("guidance"), p["guidance"]),
        ))
    _unique(at, [(at.key("parts").index(i).key("id"), p.id) for i, p in enumerate(parts)])
    reminders = []
    for a, r in _list(at.key("reminders"), d["reminders"]):
        _object(a, r, ("id", "label", "items"), ("guidance",))
        items = []
        for ai, item in _list(a.key("items"), r["items"]):
            _object(ai, item, ("id", "label", "text"))
            items.append(ReminderItem(
                id=_id(ai.key("id"), item["id"]),
                label=_string(ai.key("label"), item["label"]),
                text=_string(ai.key("text"), item["text"]),
            ))
        _unique(a, [(a.key("items").index(i).key("id"), it.id) for i, it in enumerate(items)])
        reminders.append(Reminder(
            id=_id(a.key("id"), r["id"]),
            label=_string(a.key("label"), r["label"]),
            guidance=_optional(a, r, "guidance", _strings, ()),
            items=tuple(items),
        ))
    _unique(at, [(at.key("reminders").index(i).key("id"), r.id) for i, r in enumerate(reminders)])
    return NarrativeTemplate(parts=tuple(parts), reminders=tuple(reminders))


def _prompt_set(
    at: _At, d: Any, kind: PromptKind, set_id: str, extra: tuple[str, ...] = ()
) -> PromptSet:
    """The shared shape of offence prompts, ADVOKATE, the Victims' Code and the VPS."""
    _object(at, d, ("schema", "kind", *extra, "label", "prompts"), ("guidance",))
    letters = kind is PromptKind.ADVOKATE
    prompts = []
    for a, p in _list(at.key("prompts"), d["prompts"]):
        _object(a, p, ("id", "label", "text", *(("letter",) if letters else ())),
                ("help", "required_for_signing"))
        letter = ""
        if letters:
            letter = _string(a.key("letter"), p["letter"])
            if len(letter) != 1 or not letter.isupper():
                a.key("letter").fail("must be one capital letter")
        prompts.append(Prompt(
            set_id=set_id,
            id=_id(a.key("id"), p["id"]),
            label=_string(a.key("label"), p["label"]),
            text=_string(a.key("text"), p["text"]),
            help=_optional(a, p, "help", _string, ""),
            required_for_signing=_optional(a, p, "required_for_signing", _bool, False),
            letter=letter,
        ))
    _unique(at, [(at.key("prompts").index(i).key("id"), p.id) for i, p in enumerate(prompts)])
    spelt = "".join(p.letter for p in prompts)
    if letters and spelt != ADVOKATE:
        at.key("prompts").fail(f"the letters must spell {ADVOKATE} in order, not {spelt!r}")
    return PromptSet(
        kind=kind,
        id=set_id,
        label=_string(at.key("label"), d["label"]),
        guidance=_optional(at, d, "guidance", _strings, ()),
        prompts=tuple(prompts),
    )


def _offence_prompts(at: _At, d: Any, file_stem: str) -> PromptSet:
    _object(at, d, ("schema", "kind", "offence", "label", "prompts"), ("guidance",))
    offence = _id(at.key("offence"), d["offence"])
    if offence != file_stem:
        at.key("offence").fail(f"must match the file name: {offence!r} is in {file_stem}.json")
    return _prompt_set(at, d, PromptKind.OFFENCE, offence, ("offence",))


_BUILDERS = {
    "mg11": _mg11,
    "narrative": _narrative,
    "advokate": lambda at, d: _prompt_set(at, d, PromptKind.ADVOKATE, "advokate"),
    "victims_code": lambda at, d: _prompt_set(at, d, PromptKind.VICTIMS_CODE, "victims_code"),
    "vps": lambda at, d: _prompt_set(at, d, PromptKind.VPS, "vps"),
}
