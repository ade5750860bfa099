from datetime import date, datetime

import pytest

from evr_desktop.domain import eligibility
from evr_desktop.domain.appointment import (
    ALLOWED_TRANSITIONS,
    Appointment,
    Guardian,
    OffenceType,
    Status,
    TransitionError,
    VictimDetails,
    validate,
)
from evr_desktop.domain.officer import OfficerIdentity
from evr_desktop.domain.passphrase import MAX_ASSESSED, assess, officer_words
from tests.conftest import OFFICER

# A force whose name has no police word in it, so that rule is tested alone.
OFFICER_ELSEWHERE = OfficerIdentity("PC Rowan Invented", "RI 2718", "Examplecester Constabulary", "Northgate")


def make(offence=OffenceType.ASSAULT, **victim) -> Appointment:
    fields = dict(full_name="Ffion Invented", date_of_birth=date(1990, 1, 1), mobile="07700 900123")
    fields.update(victim)
    return Appointment(
        slot=datetime(2026, 12, 1, 10, 0).astimezone(), urn="99TT1234526", offence=offence,
        victim=VictimDetails(**fields),
    )


def codes(a: Appointment) -> set[str]:
    return {r.code for r in eligibility.check(a).reasons}


def test_adult_with_phone_is_eligible_without_reasons():
    result = eligibility.check(make())
    assert result.eligible and result.reasons == ()


def test_age_is_taken_on_the_day_of_the_slot():
    # Turns 18 the day after the slot: still 17 on the day.
    a = make(date_of_birth=date(2008, 12, 2))
    assert "under_18_no_guardian" in codes(a)
    assert "17" in eligibility.check(a).blocking[0].text
    assert eligibility.check(make(date_of_birth=date(2008, 12, 1))).eligible


def test_under_18_needs_a_guardian_present():
    young = dict(date_of_birth=date(2012, 5, 5))
    assert not eligibility.check(make(**young)).eligible
    assert eligibility.check(make(guardian=Guardian("Rhodri Invented", "Father"), **young)).eligible
    absent = Guardian("Rhodri Invented", "Father", present_for_call=False)
    assert not eligibility.check(make(guardian=absent, **young)).eligible


@pytest.mark.parametrize(
    "victim, code",
    [
        (dict(has_smartphone_with_video=False), "no_video_phone"),
        (dict(has_data_or_wifi=False), "no_data"),
        (dict(offender_present=True), "offender_present"),
        (dict(date_of_birth=date(2030, 1, 1)), "dob_future"),
    ],
)
def test_each_blocking_rule_gives_its_reason(victim, code):
    result = eligibility.check(make(**victim))
    assert not result.eligible
    assert code in {r.code for r in result.blocking}
    assert all(r.text.endswith(".") for r in result.reasons)


def test_domestic_abuse_needs_a_confirmed_safe_place():
    assert "safe_place_unknown" in codes(make(OffenceType.DOMESTIC_ABUSE))
    assert "not_safe_place" in codes(make(OffenceType.DOMESTIC_ABUSE, in_safe_place=False))
    assert eligibility.check(make(OffenceType.DOMESTIC_ABUSE, in_safe_place=True)).eligible
    # Not asked for other offences.
    assert eligibility.check(make(OffenceType.FRAUD)).eligible


def test_unknown_age_is_a_warning_not_a_refusal():
    result = eligibility.check(make(date_of_birth=None))
    assert result.eligible and [r.code for r in result.warnings] == ["age_unknown"]


def test_status_lifecycle_allows_only_listed_transitions():
    a = make()
    a = a.with_status(Status.LINK_SENT).with_status(Status.VICTIM_WAITING).with_status(Status.IN_CALL)
    a = a.with_status(Status.CALL_ENDED).with_status(Status.STATEMENT_DRAFTED).with_status(Status.SIGNED)
    a = a.with_status(Status.EXPORTED)
    assert a.status is Status.EXPORTED and a.status.is_final
    with pytest.raises(TransitionError, match="cannot become"):
        make().with_status(Status.EXPORTED)
    signed = make().with_status(Status.LINK_SENT)
    for s in Status:
        if s not in ALLOWED_TRANSITIONS[Status.SIGNED]:
            with pytest.raises(TransitionError):
                Appointment(**{**signed.__dict__, "status": Status.SIGNED}).with_status(s)


@pytest.mark.parametrize(
    "change, fragment",
    [
        (dict(urn="not a urn"), "URN"),
        (dict(full_name=""), "full name is required"),
        (dict(full_name="x" * 121), "longer than"),
        (dict(full_name="Eve\u202eliam"), "control characters"),
        (dict(mobile="12345"), "UK mobile"),
        (dict(mobile=""), "mobile number is needed"),
        (dict(notes="a\x00b"), "control characters"),
    ],
)
def test_validation_names_each_problem(change, fragment):
    urn = change.pop("urn", "99TT1234526")
    a = make(**change)
    a = Appointment(**{**a.__dict__, "urn": urn})
    problems = validate(a)
    assert any(fragment in p for p in problems), problems


def test_passphrase_strength_explains_itself():
    assert assess("correct horse battery staple 42").acceptable
    weak = assess("password1")
    assert not weak.acceptable and any("12 characters" in p for p in weak.problems)
    assert not assess("Imogen Testwright rules 2026", ("Imogen Testwright",)).acceptable
    assert not assess("aaaaaaaaaaaaaaaaaa").acceptable
    assert not assess("").acceptable  # the set-up page asks before anything is typed


# What people really choose: a season, a club or a city, the year, a symbol or
# two. Long enough for a length rule and "complex", yet among the first guesses.
@pytest.mark.parametrize("weak", ["Summer2024!!", "Liverpool2023", "Chelsea2024!", "Manchester2024!"])
def test_common_shapes_are_refused_with_a_reason_in_words(weak):
    s = assess(weak, officer_words(OFFICER))
    assert not s.acceptable
    assert len(weak) >= 12 and not any("12 characters" in p for p in s.problems)  # refused on strength
    assert s.problems and all(p.endswith(".") and " " in p for p in s.problems), s.problems
    assert s.bits < 33


@pytest.mark.parametrize(
    "strong",
    ["correct horse battery staple 42", "tangerine lantern gravel orbit", "otter quilt marble saxophone"],
)
def test_long_passphrases_of_unrelated_words_are_accepted(strong):
    s = assess(strong, officer_words(OFFICER))
    assert s.acceptable, s.problems
    assert s.bits > 50


@pytest.mark.parametrize(
    "detail",
    ["Testwright", "imogen", "TW 9001", "tw9001", "9001", "Testshire", "Testford"],
)
def test_an_officer_detail_in_the_passphrase_is_refused(detail):
    # OFFICER: "PC Imogen Testwright", "TW 9001", "Testshire Police", "Testford"
    s = assess(f"otter quilt {detail} marble saxophone", officer_words(OFFICER))
    assert not s.acceptable
    assert "Do not use your own name, number, force or station in the passphrase." in s.problems


def test_short_words_of_a_detail_do_not_refuse_everything():
    # "and" in the force's name must not refuse every passphrase containing "and".
    officer = OfficerIdentity("PC Al Li", "AL 1", "Devon and Cornwall Police", "Exeter")
    assert assess("candle otter quilt marble saxophone", officer_words(officer)).acceptable


def test_police_words_count_for_little():
    s = assess("police constable warrant 2024", officer_words(OFFICER_ELSEWHERE))
    assert not s.acceptable and any("Police words" in p for p in s.problems), s.problems
    # ...but one among unrelated words does no harm.
    assert assess("ocean police lamp bicycle", officer_words(OFFICER_ELSEWHERE)).acceptable


def test_only_the_first_characters_are_assessed():
    # zxcvbn's matching grows steeply with length (and it refuses more than 72
    # characters by default): a pasted wall of text must neither fail nor stall.
    s = assess("x" * 10_000 + " otter quilt marble saxophone")
    assert not s.acceptable  # the assessed prefix is all repeats: a lower bound
    assert MAX_ASSESSED <= 72
