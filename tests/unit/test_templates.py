"""Statement templates: the shipped files, the loader's refusals, completeness."""

import json
import shutil
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest

from evr_desktop.domain.appointment import OffenceType
from evr_desktop.domain.statement import Field, FieldType, TemplateSet, completeness
from evr_desktop.statement.templates import (
    MAX_FILE_BYTES,
    TemplateError,
    default_folder,
    load_templates,
)

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "templates"

OFFENCES = {
    "assault", "stalking_harassment", "burglary_theft", "criminal_damage", "fraud", "hate_crime",
    "domestic_abuse",
}
# From docs/domain.md, with N pages.
DECLARATION = (
    "This statement (consisting of {n} page(s) each signed by me) is true to the best "
    "of my knowledge and belief and I make it knowing that, if it is tendered in "
    "evidence, I shall be liable to prosecution if I have wilfully stated in it "
    "anything which I know to be false, or do not believe to be true."
)
STATUTORY_BASIS = (
    "Criminal Procedure Rules r.16.2; Criminal Justice Act 1967 s.9; "
    "Magistrates' Courts Act 1980 ss.5A(3)(a), 5B"
)
REAR_PAGE_FIELDS = {
    "home_address", "postcode", "home_phone", "work_phone", "mobile_phone", "email",
    "preferred_contact", "gender", "date_of_birth", "place_of_birth", "former_name", "ethnicity",
    "dates_to_avoid", "no_dates_to_avoid", "willing_to_attend_court", "what_would_help",
    "special_measures", "particular_needs",
    "consent_a_process_explained", "consent_b_leaflet_given", "consent_c_medical_records_police",
    "consent_d_medical_records_defence", "consent_e_civil_proceedings", "consent_f_witness_service",
    "taken_by_name", "taken_by_number", "station", "time_taken", "place_taken",
}
HEADER_FIELDS = {"classification", "urn", "statement_of", "age", "occupation", "visually_recorded"}


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return load_templates()


# -- the shipped templates ------------------------------------------------------------------


def test_default_folder_is_the_repos_resources():
    assert default_folder() == SHIPPED


def test_default_folder_when_frozen_is_inside_the_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr("sys.frozen", True, raising=False)
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    assert default_folder() == tmp_path / "resources" / "templates"


def test_every_offence_type_has_prompts(templates):
    assert set(templates.offence_ids) == OFFENCES == {o.value for o in OffenceType}
    for offence in templates.offences:
        assert offence.label and offence.prompts
        assert all(p.key == f"{offence.id}.{p.id}" for p in offence.prompts)


def test_mg11_header_and_declaration(templates):
    mg11 = templates.mg11
    assert mg11.statutory_basis == STATUTORY_BASIS
    assert mg11.declaration_text(3) == DECLARATION.format(n=3)
    assert mg11.page_text(2, 5) == "Page 2 of 5"
    assert mg11.continuation_text("Ffion INVENTED") == "Continuation of statement of Ffion INVENTED"
    header = {f.id for s in mg11.sections if not s.rear_page for f in s.fields}
    assert header == HEADER_FIELDS
    assert mg11.field("age").default == "Over 18"
    assert mg11.field("visually_recorded").type is FieldType.YES_NO
    assert "OFFICIAL-SENSITIVE" in mg11.field("classification").choices


def test_rear_page_fields_are_all_restricted(templates):
    rear = [f for s in templates.mg11.sections if s.rear_page for f in s.fields]
    assert {f.id for f in rear} == REAR_PAGE_FIELDS
    assert all(f.restricted for f in rear)
    assert {f.id for f in templates.mg11.restricted_fields} == REAR_PAGE_FIELDS


def test_consents_a_to_f_with_their_answer_types(templates):
    consents = [f for f in templates.mg11.fields if f.id.startswith("consent_")]
    assert [f.label[:3] for f in consents] == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"]
    types = [f.type for f in consents]
    yn, yna = FieldType.YES_NO, FieldType.YES_NO_NA
    assert types == [yn, yn, yna, yna, yn, yn]
    assert all(f.required and f.restricted for f in consents)


def test_field_rules_hold_for_the_shipped_form(templates):
    for f in templates.mg11.fields:
        assert (f.max_length is not None) == f.type.is_text, f.id
        assert bool(f.choices) == (f.type is FieldType.CHOICE), f.id
        if f.required:
            assert f.in_words, f"{f.id}: required fields say in words what is missing"


def test_narrative_structure(templates):
    n = templates.narrative
    assert [p.id for p in n.parts] == [
        "summary", "who_was_there", "setting_the_scene", "chronological_account", "closure",
    ]
    assert all(p.guidance for p in n.parts)
    reminders = {r.id: [i.id for i in r.items] for r in n.reminders}
    assert reminders == {
        "five_wh": ["who", "what", "when", "where", "why", "how"],
        "ted": ["tell", "explain", "describe"],
    }


def test_offence_prompts_cover_what_domain_md_lists(templates):
    def text(offence: str) -> str:
        s = templates.offence(offence)
        return " ".join(f"{p.label} {p.text} {p.help}" for p in s.prompts).lower()

    for word in ("location", "type", "size", "metric", "shape", "colour", "pain", "when caused",
                 "weapon", "treatment"):
        assert word in text("assault"), word
    for word in ("fixated", "obsessive", "unwanted", "repeated", "frightened", "previous",
                 "damaged", "often", "loitering", "threat", "third parties"):
        assert word in text("stalking_harassment"), word
    for word in ("safe", "children", "previous", "controlling"):
        assert word in text("domestic_abuse"), word
    for word in ("motivat", "words"):
        assert word in text("hate_crime"), word
    for word in ("entry", "taken", "value", "owns", "permission"):
        assert word in text("burglary_theft"), word
    for word in ("damage", "cost of repair", "permission"):
        assert word in text("criminal_damage"), word
    for word in ("contact", "amount", "dates", "account", "said"):
        assert word in text("fraud"), word


def test_advokate_victims_code_and_vps(templates):
    assert "".join(p.letter for p in templates.advokate.prompts) == "ADVOKATE"
    assert [p.label.split(": ", 1)[1] for p in templates.advokate.prompts] == [
        "Amount of time under observation", "Distance", "Visibility", "Obstruction",
        "Known or seen before", "Any reason to remember", "Time lapse", "Errors or discrepancies",
    ]
    code = {p.id for p in templates.victims_code.required}
    assert code == {"understand_and_be_understood", "written_confirmation", "support_services",
                    "compensation", "case_updates"}
    assert len(templates.victims_code.prompts) > len(code)
    assert {p.id for p in templates.vps.prompts} >= {"physical", "emotional", "financial", "other"}
    assert any("opinion on the sentence" in g for g in templates.vps.guidance)
    assert not templates.vps.required


def test_digest_identifies_the_template_version(tmp_path, templates):
    folder = copy_shipped(tmp_path)
    assert load_templates(folder).digest == templates.digest
    edit(folder, "vps.json", lambda d: d["guidance"].append("One more line."))
    assert load_templates(folder).digest != templates.digest


# -- adding an offence is a data change -----------------------------------------------------


def copy_shipped(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(SHIPPED, folder)
    return folder


def edit(folder: Path, name: str, change: Callable[[dict], object]) -> None:
    path = folder / name
    data = json.loads(path.read_text("utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), "utf-8")


ANIMAL_CRUELTY = {
    "schema": "evr-template/1",
    "kind": "prompts",
    "offence": "animal_cruelty",
    "label": "Animal cruelty",
    "prompts": [
        {"id": "animal", "label": "Animal", "text": "Which animal, whose, its condition now."},
        {"id": "vet", "label": "Vet", "text": "Vet seen, where and when.",
         "required_for_signing": True},
    ],
}


def test_adding_an_offence_is_a_data_change(tmp_path):
    folder = copy_shipped(tmp_path)
    (folder / "prompts" / "animal_cruelty.json").write_text(json.dumps(ANIMAL_CRUELTY), "utf-8")
    loaded = load_templates(folder)
    assert set(loaded.offence_ids) == OFFENCES | {"animal_cruelty"}
    assert [p.key for p in loaded.offence("animal_cruelty").prompts] == [
        "animal_cruelty.animal", "animal_cruelty.vet",
    ]
    missing = completeness({}, "x", set(), loaded, offence="animal_cruelty")
    assert "Animal cruelty prompt 'Vet' is not marked as covered." in missing


def test_non_json_files_are_ignored(tmp_path):
    folder = copy_shipped(tmp_path)
    (folder / "prompts" / ".DS_Store").write_bytes(b"\0\1")
    (folder / "notes.txt").write_text("draft", "utf-8")
    assert set(load_templates(folder).offence_ids) == OFFENCES


# -- malformed files ------------------------------------------------------------------------


def write(name: str, text: str | bytes) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, "utf-8")
    return change


def json_edit(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda folder: edit(folder, name, change)


def set_key(path: list, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        for step in path[:-1]:
            data = data[step]
        data[path[-1]] = value
    return change


def del_key(path: list) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        for step in path[:-1]:
            data = data[step]
        del data[path[-1]]
    return change


def oversized(folder: Path) -> None:
    data = json.loads((folder / "prompts" / "fraud.json").read_text("utf-8"))
    data["guidance"] = ["x" * 1000] * (MAX_FILE_BYTES // 1000 + 1)
    (folder / "prompts" / "fraud.json").write_text(json.dumps(data), "utf-8")


def duplicate_json_key(folder: Path) -> None:
    path = folder / "prompts" / "fraud.json"
    text = path.read_text("utf-8").replace('"id": "amounts"', '"id": "amounts", "id": "sums"')
    path.write_text(text, "utf-8")


def duplicate_prompt_id(data: dict) -> None:
    data["prompts"][3]["id"] = data["prompts"][0]["id"]


def shuffle_advokate(data: dict) -> None:
    data["prompts"][0], data["prompts"][1] = data["prompts"][1], data["prompts"][0]


FIELD0 = ["sections", 0, "fields", 0]  # classification: a choice field
FIELD1 = ["sections", 0, "fields", 1]  # urn: a text field
REAR0 = ["sections", 1, "fields", 0]

# name: (how to damage the copied folder, file, field path, part of the message)
MALFORMED = {
    "bad JSON": (
        write("prompts/fraud.json", '{"schema": "evr-template/1",\n  "kind": }'),
        "prompts/fraud.json", "", "invalid JSON at line 2, column 11"),
    "not UTF-8": (write("vps.json", b'{"schema": "\xff"}'), "vps.json", "", "not UTF-8"),
    "not an object": (write("vps.json", "[]"), "vps.json", "", "must be a JSON object"),
    "wrong schema": (
        json_edit("mg11.json", set_key(["schema"], "evr-template/2")),
        "mg11.json", "schema", "must be 'evr-template/1'"),
    "wrong kind": (
        json_edit("narrative.json", set_key(["kind"], "mg11")),
        "narrative.json", "kind", "must be 'narrative'"),
    "missing schema": (
        json_edit("advokate.json", del_key(["schema"])),
        "advokate.json", "", "missing key 'schema'"),
    "unknown key": (
        json_edit("prompts/fraud.json", lambda d: d["prompts"][1].update(lable="x")),
        "prompts/fraud.json", "prompts[1].lable", "unknown key (did you mean 'label'?)"),
    "unknown top-level key": (
        json_edit("vps.json", set_key(["extra"], 1)),
        "vps.json", "extra", "unknown key"),
    "missing key": (
        json_edit("prompts/assault.json", del_key(["prompts", 0, "text"])),
        "prompts/assault.json", "prompts[0]", "missing key 'text'"),
    "wrong type (bool)": (
        json_edit("mg11.json", set_key([*FIELD0, "required"], "yes")),
        "mg11.json", "sections[0].fields[0].required", "must be true or false"),
    "wrong type (number)": (
        json_edit("mg11.json", set_key([*FIELD1, "max_length"], "20")),
        "mg11.json", "sections[0].fields[1].max_length", "must be a whole number"),
    "wrong type (list)": (
        json_edit("narrative.json", set_key(["parts", 2, "guidance"], "one line")),
        "narrative.json", "parts[2].guidance", "must be a list"),
    "empty string": (
        json_edit("victims_code.json", set_key(["prompts", 4, "text"], "  ")),
        "victims_code.json", "prompts[4].text", "must not be empty"),
    "unknown field type": (
        json_edit("mg11.json", set_key([*FIELD1, "type"], "string")),
        "mg11.json", "sections[0].fields[1].type", "must be one of: text,"),
    "duplicate id": (
        json_edit("prompts/fraud.json", duplicate_prompt_id),
        "prompts/fraud.json", "prompts[3].id",
        "duplicate id 'how_contacted' (first at prompts[0].id)"),
    "duplicate field id across sections": (
        json_edit("mg11.json", set_key([*REAR0, "id"], "urn")),
        "mg11.json", "sections[1].fields[0].id", "duplicate id 'urn'"),
    "duplicate JSON key": (
        duplicate_json_key,
        "prompts/fraud.json", "prompts[3]", "the key 'id' appears more than once"),
    "id not snake_case": (
        json_edit("prompts/fraud.json", set_key(["prompts", 3, "id"], "Bad-Id")),
        "prompts/fraud.json", "prompts[3].id", "must be snake_case"),
    "offence id does not match file": (
        json_edit("prompts/fraud.json", set_key(["offence"], "scam")),
        "prompts/fraud.json", "offence", "must match the file name"),
    "choice without choices": (
        json_edit("mg11.json", del_key([*FIELD0, "choices"])),
        "mg11.json", "sections[0].fields[0]", "missing key 'choices'"),
    "empty choices": (
        json_edit("mg11.json", set_key([*FIELD0, "choices"], [])),
        "mg11.json", "sections[0].fields[0].choices", "must not be empty"),
    "choices on a text field": (
        json_edit("mg11.json", set_key([*FIELD1, "choices"], ["a"])),
        "mg11.json", "sections[0].fields[1].choices", "only choice fields"),
    "text without max_length": (
        json_edit("mg11.json", del_key([*FIELD1, "max_length"])),
        "mg11.json", "sections[0].fields[1]", "missing key 'max_length'"),
    "default not a choice": (
        json_edit("mg11.json", set_key([*FIELD0, "default"], "SECRET")),
        "mg11.json", "sections[0].fields[0].default", "must be one of"),
    "rear-page field not restricted": (
        json_edit("mg11.json", set_key([*REAR0, "restricted"], False)),
        "mg11.json", "sections[1].fields[0].restricted", "must be true"),
    "front-page field restricted": (
        json_edit("mg11.json", set_key([*FIELD1, "restricted"], True)),
        "mg11.json", "sections[0].fields[1].restricted", "must be false"),
    "required_unless names nothing": (
        json_edit("mg11.json", set_key([*REAR0, "required_unless"], "no_such_field")),
        "mg11.json", "sections[1].fields[0].required_unless", "names no other field"),
    "declaration without page count": (
        json_edit("mg11.json", set_key(["declaration"], "This statement is true.")),
        "mg11.json", "declaration", "placeholder {pages} exactly once"),
    "unknown placeholder": (
        json_edit("mg11.json", set_key(["continuation_heading"], "Continuation of {nmae}")),
        "mg11.json", "continuation_heading", "unknown placeholder {nmae}"),
    "ADVOKATE letters out of order": (
        json_edit("advokate.json", shuffle_advokate),
        "advokate.json", "prompts", "must spell ADVOKATE"),
    "letter outside ADVOKATE": (
        json_edit("victims_code.json", lambda d: d["prompts"][0].update(letter="U")),
        "victims_code.json", "prompts[0].letter", "unknown key"),
    "oversized file": (oversized, "prompts/fraud.json", "", "over the 1 MiB limit"),
    "missing file": (lambda folder: (folder / "vps.json").unlink(), "vps.json", "", "missing"),
    "unexpected file": (
        write("victim_code.json", "{}"), "victim_code.json", "", "unexpected template file"),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_templates_are_refused_naming_file_and_field(tmp_path, case):
    damage, file, path, message = case
    folder = copy_shipped(tmp_path)
    damage(folder)
    with pytest.raises(TemplateError) as caught:
        load_templates(folder)
    err = caught.value
    assert (err.file, err.path) == (file, path), str(err)
    assert message in err.message, str(err)
    assert str(err) == (f"{file}: {path}: {err.message}" if path else f"{file}: {err.message}")


def test_oversized_file_is_refused_before_parsing(tmp_path, monkeypatch):
    folder = copy_shipped(tmp_path)
    oversized(folder)
    real_loads = json.loads

    def loads(text, **kwargs):
        assert len(text) <= MAX_FILE_BYTES, "parsed an oversized file"
        return real_loads(text, **kwargs)

    monkeypatch.setattr("json.loads", loads)
    with pytest.raises(TemplateError, match="1 MiB"):
        load_templates(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates(tmp_path / "nowhere")


# -- completeness ---------------------------------------------------------------------------


def answer(f: Field) -> object:
    return {
        FieldType.TEXT: "Invented",
        FieldType.MULTILINE: "1 Invented Road\nAnytown",
        FieldType.DATE: date(1990, 1, 1),
        FieldType.DATETIME: datetime(2026, 5, 3, 21, 30),
        FieldType.CHOICE: f.choices[0] if f.choices else None,
        FieldType.YES_NO: "yes",
        FieldType.YES_NO_NA: "n/a",
        FieldType.BOOLEAN: False,
    }[f.type]


def complete_fields(templates: TemplateSet) -> dict[str, object]:
    return {f.id: answer(f) for f in templates.mg11.fields if f.required}


def all_required_ticks(templates: TemplateSet, *sets: str) -> set[str]:
    chosen = [templates.victims_code, templates.advokate, *(templates.offence(s) for s in sets)]
    return {p.key for s in chosen for p in s.required}


def test_empty_statement_lists_everything_missing_in_words(templates):
    missing = completeness({}, "  \n", set(), templates, offence="assault")
    assert missing[0] == "The narrative is empty."
    for sentence in (
        "The URN (case reference) is missing.",
        "The witness's full name is missing.",
        "The witness's occupation is missing.",
        "The visually-recorded question has no answer.",
        "The witness's date of birth is missing.",
        "The list of dates to avoid (or 'No dates to avoid') is missing.",
        "Consent (a) (process and VPS scheme explained) has no answer.",
        "Consent (c) (police access to medical records) has no answer.",
        "Consent (f) (details passed to the Witness Service) has no answer.",
        "The time and date the statement was taken is missing.",
        "Victims' Code prompt 'Written confirmation of the crime report' is not marked as covered.",
        "Assault prompt 'Injuries: size (metric)' is not marked as covered.",
    ):
        assert sentence in missing
    required_fields = [f for f in templates.mg11.fields if f.required]
    required_prompts = templates.victims_code.required + templates.offence("assault").required
    assert len(missing) == 1 + len(required_fields) + len(required_prompts)
    assert not any("mail" in m or "ADVOKATE" in m for m in missing)  # optional; no identification


def test_complete_statement_has_nothing_missing(templates):
    fields = complete_fields(templates)
    ticks = all_required_ticks(templates, "assault")
    narrative = "On Friday I was punched outside my home."
    assert completeness(fields, narrative, ticks, templates, offence="assault") == []
    assert completeness(fields, narrative, ticks, templates) == []  # no offence: code only
    assert completeness(
        fields, narrative, ticks, templates, offence="assault", suspect_identified=True
    ) == []


def test_advokate_is_required_only_when_a_suspect_is_identified(templates):
    fields = complete_fields(templates)
    ticks = all_required_ticks(templates) - {"advokate.distance"}
    assert completeness(fields, "x", ticks, templates) == []
    assert completeness(fields, "x", ticks, templates, suspect_identified=True) == [
        "ADVOKATE prompt 'D: Distance' is not marked as covered.",
    ]


def test_prompts_are_ticked_by_qualified_key(templates):
    fields = complete_fields(templates)
    ticks = all_required_ticks(templates) | {"previous_incidents"}  # a bare id does not count
    missing = completeness(fields, "x", ticks, templates, offence="domestic_abuse")
    assert "Domestic abuse prompt 'Previous incidents' is not marked as covered." in missing
    ticks |= {p.key for p in templates.offence("domestic_abuse").required}
    assert completeness(fields, "x", ticks, templates, offence="domestic_abuse") == []


def test_no_dates_to_avoid_lifts_the_dates_requirement(templates):
    fields = complete_fields(templates)
    ticks = all_required_ticks(templates)
    del fields["dates_to_avoid"]
    assert completeness(fields, "x", ticks, templates) == [
        "The list of dates to avoid (or 'No dates to avoid') is missing.",
    ]
    fields["no_dates_to_avoid"] = True
    assert completeness(fields, "x", ticks, templates) == []


def test_values_present_but_wrong_are_reported(templates):
    fields = complete_fields(templates) | {
        "consent_c_medical_records_police": "maybe",
        "visually_recorded": "n/a",  # yes/no only
        "occupation": "x" * 101,
        "date_of_birth": "31/02/1990",
        "time_taken": "yesterday",
        "email": "   ",  # optional and blank: fine
    }
    missing = completeness(fields, "x", all_required_ticks(templates), templates)
    assert missing == [  # in form order
        "The witness's occupation is longer than 100 characters.",
        "The visually-recorded question has an answer that is not one of: Yes, No.",
        "The witness's date of birth is not a valid date.",
        "Consent (c) (police access to medical records) has an answer that is not one of: "
        "Yes, No, N/A.",
        "The time and date the statement was taken is not a valid date and time.",
    ]


def test_iso_strings_are_accepted_for_dates(templates):
    iso = {"date_of_birth": "1990-01-01", "time_taken": "2026-05-03T21:30"}
    fields = complete_fields(templates) | iso
    assert completeness(fields, "x", all_required_ticks(templates), templates) == []


def test_wrong_python_type_is_a_bug_not_a_sentence(templates):
    fields = complete_fields(templates) | {"occupation": 42}
    with pytest.raises(TypeError, match="occupation"):
        completeness(fields, "x", set(), templates)


def test_unknown_offence_is_a_bug(templates):
    with pytest.raises(KeyError):
        completeness({}, "x", set(), templates, offence="arson")
