"""PII engine properties on generated text: no crash, idempotent anonymization, placeholders not re-found."""

import re
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retune.pii import PLACEHOLDER_PATTERN, Pseudonymizer, anonymize_text, find_pii

P = Pseudonymizer(b"property-key")

# Pieces that put the recognizers to work, glued by random text, separators and invisible characters.
PIECES = [
    "anna@example.com",
    "+44 20 7946 0958",
    "0151 23456789",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "203.0.113.42",
    "2001:db8::1",
    "123-45-6789",
    "born on 12 March 1985",
    "sk-abcdefghijklmnopqrstuvwx",
    "https://u:p4ssw0rd@x.example/?token=abcdef123456",
    "password: hunter22",
    "My name is Anna Smith",
    "Hi Anna,",
    "Regards,\nLiam O'Brien\n",
    "221B Baker Street",
    "order #A-100234",
    "v2.3.11",
    "$1,299.00",
    "2026-09-14T10:32:00Z",
    "<EMAIL_0123abcd>",
    "<NAME_deadbeef>",
    "\u200b",
    "\u0430",
    "\uff14",
    "\n",
    " ",
    "-",
    ".",
    "@",
    ":",
    "0",
    "1",
    "+",
]
TEXT = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=14).map("".join)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.text(max_size=300))
def test_never_crashes_on_random_text(text):
    for m in find_pii(text):
        assert 0 <= m.start < m.end <= len(text) and text[m.start : m.end] == m.value


@SETTINGS
@given(TEXT)
def test_matches_do_not_overlap_and_anonymizing_is_idempotent(text):
    matches = find_pii(text)
    assert all(a.end <= b.start for a, b in zip(matches, matches[1:], strict=False))
    once, counts = anonymize_text(text, P)
    assert anonymize_text(once, P) == (once, Counter())
    # every placeholder of the input survives, and each replacement added one
    assert len(re.findall(PLACEHOLDER_PATTERN, once)) >= sum(counts.values())


@SETTINGS
@given(
    st.lists(st.sampled_from(["EMAIL", "PHONE", "CARD", "NAME", "SECRET", "REDACTED"]), max_size=6),
    st.lists(st.text(max_size=8), max_size=6),
)
def test_placeholders_are_never_detected(entities, fillers):
    placeholders = [P.placeholder(e, f"value-{i}") for i, e in enumerate(entities)]
    text = "".join(f + p for f, p in zip(fillers, placeholders, strict=False))
    for m in find_pii(text):
        assert not any(p in m.value for p in placeholders), m
