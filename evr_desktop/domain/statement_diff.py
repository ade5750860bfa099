"""What changed between two versions of a statement, in a form an officer reads.

Pure functions over :class:`StatementContent`; no I/O, no Qt.

- The narrative is compared line by line (a line is a paragraph as typed);
  a line that was edited rather than replaced is one ``changed`` line whose
  ``words`` say exactly which words went and which came, and whose ``text``
  shows them inline, ``[-removed-]{+added+}`` (as ``git diff --word-diff``).
  When the narrative changed it is given whole, unchanged lines as ``same``,
  so the change is read in its context; an unchanged narrative gives nothing.
- Fields give one line each that changed: ``Label: old -> new``. A field that
  is absent and one that is ``None`` are the same ("not set"); an empty string
  is an answer ("blank"), as ``False`` is for a tick box.
- Prompts give one line per tick added or removed.

Identical contents give an empty list. Text is compared exactly as stored (no
Unicode normalisation): the diff shows a change wherever the saved evidence
differs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

from .statement_doc import FieldValue, StatementContent

Kind = Literal["same", "added", "removed", "changed"]
Section = Literal["narrative", "fields", "prompts"]
WordRun = tuple[Literal["same", "removed", "added"], str]

NOT_SET = "(not set)"
BLANK = "(blank)"
ARROW = " -> "

# Other parts of StatementContent, shown with the fields. Callers may relabel
# them through ``labels`` under these keys.
_EXTRA_LABELS: Mapping[str, str] = {
    "statement_type": "Statement type",
    "offence": "Offence",
    "suspect_identified": "Suspect identified",
}

_PAIR_CUTOFF = 0.5  # how alike two lines must be to show as one edited line
_PAIR_LIMIT = 2500  # line pairs compared in one replaced block before giving up pairing
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


@dataclass(frozen=True)
class DiffLine:
    kind: Kind
    text: str  # ready to show
    old: str = ""  # the old line or value, as shown
    new: str = ""  # the new line or value, as shown
    section: Section = "narrative"
    key: str = ""  # field id or qualified prompt key; "" for narrative lines
    label: str = ""  # field or prompt label
    words: tuple[WordRun, ...] = ()  # for "changed": runs of same/removed/added text


# -- words ---------------------------------------------------------------------
def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> tuple[WordRun, ...]:
    """Runs of ``("same"|"removed"|"added", text)``; joining the same and
    removed runs gives ``old``, the same and added runs give ``new``."""
    a, b = _tokens(old), _tokens(new)
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    # ("same", text) or ("change", old_text, new_text)
    items: list[tuple[str, ...]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            items.append(("same", "".join(a[i1:i2])))
        else:
            items.append(("change", "".join(a[i1:i2]), "".join(b[j1:j2])))
    # "[-quickly ran-]{+slowly walked+}" reads better than two changes split
    # by an unchanged space: fold whitespace-only gaps into the changes around them.
    merged: list[tuple[str, ...]] = []
    for item in items:
        if (
            item[0] == "change"
            and len(merged) >= 2
            and merged[-1][0] == "same"
            and merged[-1][1].isspace()
            and merged[-2][0] == "change"
        ):
            gap = merged.pop()[1]
            prev = merged.pop()
            item = ("change", prev[1] + gap + item[1], prev[2] + gap + item[2])
        merged.append(item)
    runs: list[WordRun] = []
    for item in merged:
        if item[0] == "same":
            runs.append(("same", item[1]))
        else:
            if item[1]:
                runs.append(("removed", item[1]))
            if item[2]:
                runs.append(("added", item[2]))
    return tuple(runs)


def render_words(runs: Iterable[WordRun]) -> str:
    marks = {"same": "{}", "removed": "[-{}-]", "added": "{{+{}+}}"}
    return "".join(marks[kind].format(text) for kind, text in runs)


def _similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, _tokens(a), _tokens(b), autojunk=False).ratio()


# -- narrative -----------------------------------------------------------------
def _changed_line(old: str, new: str) -> DiffLine:
    runs = word_diff(old, new)
    return DiffLine("changed", render_words(runs), old=old, new=new, section="narrative", words=runs)


def _replaced(a: list[str], b: list[str]) -> list[DiffLine]:
    """Lines ``a`` became lines ``b``: pair the most alike as edited lines
    (as difflib.Differ does), the rest are removed or added."""
    best, bi, bj = 0.0, -1, -1
    if a and b and len(a) * len(b) <= _PAIR_LIMIT:
        for i, old in enumerate(a):
            for j, new in enumerate(b):
                ratio = _similarity(old, new)
                if ratio > best:
                    best, bi, bj = ratio, i, j
    if best < _PAIR_CUTOFF:
        return [DiffLine("removed", x, old=x, section="narrative") for x in a] + [
            DiffLine("added", x, new=x, section="narrative") for x in b
        ]
    middle = (
        DiffLine("same", a[bi], old=a[bi], new=b[bj], section="narrative")
        if a[bi] == b[bj]
        else _changed_line(a[bi], b[bj])
    )
    return _replaced(a[:bi], b[:bj]) + [middle] + _replaced(a[bi + 1 :], b[bj + 1 :])


def _narrative(old: str, new: str) -> list[DiffLine]:
    if old == new:
        return []
    a, b = old.splitlines(), new.splitlines()
    out: list[DiffLine] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.extend(DiffLine("same", x, old=x, new=x, section="narrative") for x in a[i1:i2])
        else:
            out.extend(_replaced(a[i1:i2], b[j1:j2]))
    if all(line.kind == "same" for line in out):
        # Only line endings or a trailing line break differ: still a change.
        out.append(DiffLine("changed", "Line breaks changed (no words changed)", section="narrative",
                            key="line_breaks"))
    return out


# -- fields and prompts --------------------------------------------------------
def _shown(value: FieldValue | object) -> str:
    if value is None:
        return NOT_SET
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    text = str(value)
    return text if text.strip() else BLANK


def _one_line(text: str) -> str:
    return " / ".join(part.strip() for part in text.splitlines() if part.strip()) or text


def _ordered(keys: Iterable[str], order: Mapping[str, str]) -> list[str]:
    rank = {k: i for i, k in enumerate(order)}
    return sorted(set(keys), key=lambda k: (rank.get(k, len(rank)), k))


def _field_line(key: str, label: str, old: object, new: object) -> DiffLine:
    o, n = _shown(old), _shown(new)
    kind: Kind = "added" if old is None else "removed" if new is None else "changed"
    words = word_diff(o, n) if isinstance(old, str) and isinstance(new, str) else ()
    return DiffLine(kind, f"{label}: {_one_line(o)}{ARROW}{_one_line(n)}", old=o, new=n,
                    section="fields", key=key, label=label, words=words)


def _fields(old: StatementContent, new: StatementContent, labels: Mapping[str, str]) -> list[DiffLine]:
    out = []
    for key in _ordered([*old.fields, *new.fields], labels):
        o, n = old.fields.get(key), new.fields.get(key)
        if o != n:
            out.append(_field_line(key, labels.get(key, key), o, n))
    extras: dict[str, tuple[object, object]] = {
        "statement_type": (old.statement_type.value, new.statement_type.value),
        "offence": (old.offence, new.offence),
        "suspect_identified": (old.suspect_identified, new.suspect_identified),
    }
    for key, (before, after) in extras.items():
        if before != after:
            out.append(_field_line(key, labels.get(key, _EXTRA_LABELS[key]), before, after))
    return out


def _prompts(old: StatementContent, new: StatementContent, labels: Mapping[str, str]) -> list[DiffLine]:
    out = []
    ticked, unticked = new.ticked_prompts - old.ticked_prompts, old.ticked_prompts - new.ticked_prompts
    for key in _ordered(ticked | unticked, labels):
        label = labels.get(key, key)
        if key in ticked:
            out.append(DiffLine("added", f"Ticked: {label}", new="ticked", section="prompts", key=key, label=label))
        else:
            out.append(DiffLine("removed", f"Unticked: {label}", old="ticked", section="prompts", key=key,
                                label=label))
    return out


def diff_versions(
    old: StatementContent,
    new: StatementContent,
    labels: Mapping[str, str] | None = None,
    prompt_labels: Mapping[str, str] | None = None,
) -> list[DiffLine]:
    """The changes from ``old`` to ``new``: narrative, then fields, then prompts.

    ``labels`` maps field ids to labels (and orders them, e.g. template
    order); ``prompt_labels`` does the same for qualified prompt keys. Ids
    stand in for labels that are missing."""
    return [
        *_narrative(old.narrative, new.narrative),
        *_fields(old, new, labels or {}),
        *_prompts(old, new, prompt_labels or {}),
    ]


# -- summary -------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _lower_first(label: str) -> str:
    if len(label) > 1 and label[:2].isupper():  # URN, DOB: keep
        return label
    return label[:1].lower() + label[1:]


def _short(label: str, limit: int = 40) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def summary(diff: Iterable[DiffLine]) -> str:
    """One sentence: "3 lines changed in the narrative; occupation changed"."""
    lines = list(diff)
    parts: list[str] = []

    narrative = [x for x in lines if x.section == "narrative" and x.kind != "same"]
    if any(x.key == "line_breaks" for x in narrative):
        parts.append("line breaks changed in the narrative")
    counts = [
        (sum(1 for x in narrative if x.kind == k and x.key != "line_breaks"), word)
        for k, word in (("changed", "changed"), ("added", "added"), ("removed", "removed"))
    ]
    counts = [(n, word) for n, word in counts if n]
    if counts:
        first, *rest = counts
        said = [f"{_plural(first[0], 'line')} {first[1]}", *(f"{n} {word}" for n, word in rest)]
        parts.append(", ".join(said) + " in the narrative")

    fields = [x for x in lines if x.section == "fields"]
    if len(fields) > 3:
        parts.append(f"{len(fields)} fields changed")
    elif fields:
        parts.append(_and([_short(_lower_first(x.label or x.key)) for x in fields]) + " changed")

    prompts = [x for x in lines if x.section == "prompts"]
    ticked = sum(1 for x in prompts if x.kind == "added")
    unticked = sum(1 for x in prompts if x.kind == "removed")
    if ticked and unticked:
        parts.append(f"{_plural(ticked, 'prompt')} ticked, {unticked} unticked")
    elif ticked:
        parts.append(f"{_plural(ticked, 'prompt')} ticked")
    elif unticked:
        parts.append(f"{_plural(unticked, 'prompt')} unticked")

    if not parts:
        return "No changes"
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]
