"""The commitment to the victim's DTLS fingerprint (evr_desktop/domain/verification.py,
docs/victim-page.md "Commitment"): the hash the page sends, and the officer's check."""

from __future__ import annotations

import hashlib

import pytest

from evr_desktop.domain.verification import (
    check_commitment,
    code_from_fingerprints,
    commitment,
    commitment_matches,
    is_commitment,
    normalise_fingerprint,
)

FP_A = ":".join(["AB"] * 31 + ["CD"])
FP_B = ":".join(["01"] * 31 + ["EF"])
# The vector docs/victim-page.md gives (the page's JavaScript is checked against it too).
COMMIT_A = "ba6d2890283617a6f6e6b1d237eb728fb618e0bfa83da9d29688aebfecf4a565"


def sdp(fingerprint_line: str) -> str:
    return ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
            f"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{fingerprint_line}\r\n")


def test_known_vector():
    assert commitment(FP_A) == COMMIT_A
    # independently: SHA-256 over the UTF-8 of the upper-case, colon-separated text
    assert hashlib.sha256(FP_A.encode("utf-8")).hexdigest() == COMMIT_A
    assert commitment_matches(COMMIT_A, FP_A)


def test_the_fingerprint_is_normalised_as_the_code_does():
    assert normalise_fingerprint(f"  {FP_A.lower()}\t") == FP_A
    assert commitment(f" {FP_A.lower()} ") == COMMIT_A
    assert commitment_matches(COMMIT_A, FP_A.lower())
    # the six-digit code is unchanged (its own vector)
    assert code_from_fingerprints(FP_A, FP_B) == "061911"
    # 20 bits can exceed 999999 (here 1044164): the code stays six digits
    assert code_from_fingerprints("AB:" * 31 + "0F", FP_B) == "044164"


def test_a_different_fingerprint_does_not_match():
    assert not commitment_matches(COMMIT_A, FP_B)
    one_pair_off = FP_A[:-2] + "CE"
    assert not commitment_matches(COMMIT_A, one_pair_off)
    assert not commitment_matches(commitment(FP_B), FP_A)


def test_the_answer_sdp_is_checked_on_its_first_sha256_line():
    assert check_commitment(COMMIT_A, sdp(f"a=fingerprint:sha-256 {FP_A.lower()}"))
    assert check_commitment(COMMIT_A, sdp(f"a=fingerprint:SHA-256 {FP_A}"))
    assert not check_commitment(COMMIT_A, sdp(f"a=fingerprint:sha-256 {FP_B}"))
    # the sha-256 line counts, not another algorithm's
    two = f"a=fingerprint:sha-1 {FP_B}\r\na=fingerprint:sha-256 {FP_A}"
    assert check_commitment(COMMIT_A, sdp(two))
    # no sha-256 fingerprint at all: no match (the call is stopped), not an exception
    assert not check_commitment(COMMIT_A, sdp(f"a=fingerprint:sha-1 {FP_A}"))
    assert not check_commitment(COMMIT_A, "v=0\r\n")


@pytest.mark.parametrize("bad", [
    COMMIT_A.upper(),  # upper case: not what the page sends
    COMMIT_A[:-1],  # 63 characters
    COMMIT_A + "0",  # 65
    "g" * 64,  # not hex
    f" {COMMIT_A}",
    "",
    None,
    64,
    ["a" * 64],
])
def test_a_malformed_commitment_never_matches(bad):
    assert not is_commitment(bad)
    assert not commitment_matches(bad, FP_A)  # type: ignore[arg-type]
    assert not check_commitment(bad, sdp(f"a=fingerprint:sha-256 {FP_A}"))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [
    "",
    "AB:CD",  # too short
    FP_A + ":00",  # 33 pairs (a SHA-384 would be 48)
    FP_A.replace(":", ""),  # no separators
    FP_A.replace("AB", "XY", 1),  # not hex
    None,
])
def test_a_malformed_fingerprint_is_refused_or_a_mismatch(bad):
    with pytest.raises(ValueError):
        commitment(bad)  # type: ignore[arg-type]
    assert not commitment_matches(COMMIT_A, bad)  # type: ignore[arg-type]


def test_is_commitment_accepts_exactly_64_lowercase_hex():
    assert is_commitment(COMMIT_A) and is_commitment("0" * 64)
