from evr_desktop.domain.statement_diff import DiffLine, diff_versions, render_words, summary, word_diff
from evr_desktop.domain.statement_doc import StatementContent, StatementType

LABELS = {"statement_of": "Statement of", "occupation": "Occupation", "age": "Age if under 18", "urn": "URN"}
PROMPTS = {"assault.injury_size": "Size of injury", "assault.weapon": "Weapon used"}

NARRATIVE = (
    "I was at the Invented Arms on Saturday night.\n"
    "The man punched me twice in the face.\n"
    "\n"
    "I went to the hospital the next day."
)


def c(narrative=NARRATIVE, fields=None, prompts=(), **kw) -> StatementContent:
    return StatementContent(fields=fields if fields is not None else {"occupation": "Nurse"}, narrative=narrative,
                            ticked_prompts=frozenset(prompts), **kw)


def changes(diff, section=None):
    return [x for x in diff if x.kind != "same" and (section is None or x.section == section)]


def test_identical_contents_give_an_empty_diff():
    assert diff_versions(c(), c()) == []
    assert diff_versions(StatementContent(), StatementContent()) == []
    assert summary([]) == "No changes"


def test_narrative_word_changes_are_shown_within_the_line():
    new = NARRATIVE.replace("punched me twice", "kicked me three times")
    diff = diff_versions(c(), c(new))
    assert [x.kind for x in diff] == ["same", "changed", "same", "same"]  # whole narrative, in context
    line = diff[1]
    assert line.section == "narrative"
    assert line.old == "The man punched me twice in the face."
    assert line.new == "The man kicked me three times in the face."
    # Exactly the words that changed; "me" stayed.
    assert line.text == "The man [-punched-]{+kicked+} me [-twice-]{+three times+} in the face."
    assert ("removed", "twice") in line.words and ("added", "three times") in line.words
    assert "".join(t for k, t in line.words if k != "added") == line.old
    assert "".join(t for k, t in line.words if k != "removed") == line.new
    assert summary(diff) == "1 line changed in the narrative"


def test_added_and_removed_lines_and_a_rewritten_line():
    new = (
        "I was at the Invented Arms on Saturday night.\n"
        "Zebras quietly consumed seventeen lemons afterwards.\n"
        "The man punched me twice in the face.\n"
        "\n"
    )
    diff = diff_versions(c(), c(new))
    kinds = [(x.kind, x.text) for x in changes(diff)]
    assert ("added", "Zebras quietly consumed seventeen lemons afterwards.") in kinds
    assert ("removed", "I went to the hospital the next day.") in kinds
    assert summary(diff) == "1 line added, 1 removed in the narrative"
    # A line rewritten beyond recognition reads as removed + added, not a word soup.
    diff = diff_versions(c("Completely different words here."), c("Nothing alike at all, honestly!"))
    assert [x.kind for x in diff] == ["removed", "added"]


def test_several_lines_changed():
    old = "one two three\nfour five six\nseven eight nine\nten"
    new = "one TWO three\nfour five SIX\nseven eight nine\nten eleven"
    diff = diff_versions(c(old), c(new))
    assert [x.kind for x in diff] == ["changed", "changed", "same", "changed"]
    assert diff[3].text == "ten{+ eleven+}"
    assert summary(diff) == "3 lines changed in the narrative"


def test_line_endings_alone_still_show_as_a_change():
    diff = diff_versions(c("a\nb"), c("a\r\nb\n"))
    assert changes(diff) and summary(diff) == "Line breaks changed in the narrative"


def test_field_changes_use_labels_and_template_order():
    old = c(fields={"statement_of": "Ann Invented", "occupation": "Nurse", "urn": "99TT1"})
    new = c(fields={"statement_of": "Ann Invented", "occupation": "Teacher", "urn": "99TT1", "age": "Over 18"})
    diff = diff_versions(old, new, labels=LABELS)
    assert [(x.kind, x.text, x.section, x.key) for x in diff] == [
        ("changed", "Occupation: Nurse -> Teacher", "fields", "occupation"),
        ("added", "Age if under 18: (not set) -> Over 18", "fields", "age"),
    ]
    assert diff[0].old == "Nurse" and diff[0].new == "Teacher"
    assert summary(diff) == "Occupation and age if under 18 changed"
    # Without labels the ids stand in, in id order.
    assert [x.text for x in diff_versions(old, new)] == ["age: (not set) -> Over 18", "occupation: Nurse -> Teacher"]


def test_field_values_of_every_kind():
    old = c(fields={"visually_recorded": False, "what_would_help": "A ramp\nA quiet room", "email": "x@invented"})
    new = c(fields={"visually_recorded": True, "what_would_help": "A ramp\nA hearing loop", "email": "",
                    "gender": None})
    diff = diff_versions(old, new)
    texts = {x.key: x.text for x in diff}
    assert texts["visually_recorded"] == "visually_recorded: No -> Yes"
    assert texts["what_would_help"] == "what_would_help: A ramp / A quiet room -> A ramp / A hearing loop"
    assert texts["email"] == "email: x@invented -> (blank)"
    assert "gender" not in texts  # None is the same as absent
    assert next(x for x in diff if x.key == "what_would_help").new == "A ramp\nA hearing loop"
    assert summary(diff) == "Email, visually_recorded and what_would_help changed"
    # Clearing a field is a removal; more than three fields are counted, not listed.
    cleared = diff_versions(c(fields={"occupation": "Nurse"}), c(fields={}), labels=LABELS)
    assert [(x.kind, x.text) for x in cleared] == [("removed", "Occupation: Nurse -> (not set)")]
    many = diff_versions(c(fields={}), c(fields={k: "x" for k in "abcd"}))
    assert summary(many) == "4 fields changed"


def test_offence_and_suspect_flags_show_with_the_fields():
    diff = diff_versions(c(offence=None), c(offence="assault", suspect_identified=True))
    assert [x.text for x in diff] == ["Offence: (not set) -> assault", "Suspect identified: No -> Yes"]
    assert [x.section for x in diff] == ["fields", "fields"]
    vps = diff_versions(c(), c(statement_type=StatementType.VPS))
    assert [x.text for x in vps] == ["Statement type: witness -> vps"]


def test_prompt_ticks_added_and_removed():
    old = c(prompts={"assault.injury_size", "victims_code.written_confirmation"})
    new = c(prompts={"assault.weapon", "victims_code.written_confirmation"})
    diff = diff_versions(old, new, prompt_labels=PROMPTS)
    assert [(x.kind, x.text, x.section, x.key) for x in diff] == [
        ("removed", "Unticked: Size of injury", "prompts", "assault.injury_size"),
        ("added", "Ticked: Weapon used", "prompts", "assault.weapon"),
    ]
    assert summary(diff) == "1 prompt ticked, 1 unticked"
    more = diff_versions(c(), c(prompts={"a.b", "c.d"}))
    assert [x.text for x in more] == ["Ticked: a.b", "Ticked: c.d"] and summary(more) == "2 prompts ticked"


def test_unicode_text():
    old = "Dywedodd hi fod y dyn yn gwisgo côt ddu.\n他穿着黑色外套。\nZoë said “stop” 🙏"
    new = "Dywedodd hi fod y dyn yn gwisgo côt las.\n他穿着黑色外套。\nZoë said “stop now” 🙏"
    diff = diff_versions(c(old, fields={"statement_of": "Siân Ó Dálaigh"}),
                         c(new, fields={"statement_of": "Siân Ó Dálaigh-Invented"}), labels=LABELS)
    narrative = changes(diff, "narrative")
    assert [x.text for x in narrative] == [
        "Dywedodd hi fod y dyn yn gwisgo côt [-ddu-]{+las+}.",
        "Zoë said “stop{+ now+}” 🙏",
    ]
    assert [x.text for x in changes(diff, "fields")] == ["Statement of: Siân Ó Dálaigh -> Siân Ó Dálaigh-Invented"]
    # Composed and decomposed é differ as stored evidence, so the diff says so.
    assert diff_versions(c("caf\u00e9"), c("cafe\u0301")) != []
    assert summary(diff) == "2 lines changed in the narrative; statement of changed"


def test_everything_at_once_summary():
    old = c(fields={"occupation": "Nurse", "urn": "1"}, prompts={"assault.injury_size"})
    new = c(NARRATIVE.replace("twice", "three times").replace("next day", "same night"),
            fields={"occupation": "Teacher", "urn": "1"}, prompts={"assault.injury_size", "assault.weapon"})
    diff = diff_versions(old, new, labels=LABELS, prompt_labels=PROMPTS)
    assert [x.section for x in changes(diff)] == ["narrative", "narrative", "fields", "prompts"]
    assert summary(diff) == "2 lines changed in the narrative; occupation changed; 1 prompt ticked"


def test_word_diff_round_trips_and_renders():
    runs = word_diff("He quickly ran to the red car.", "He slowly walked to the blue car, then left.")
    assert render_words(runs) == "He [-quickly ran-]{+slowly walked+} to the [-red-]{+blue+} car{+, then left+}."
    assert word_diff("same", "same") == (("same", "same"),)
    assert word_diff("", "new words") == (("added", "new words"),)
    assert isinstance(diff_versions(c("a"), c("b"))[0], DiffLine)
