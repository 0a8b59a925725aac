"""Shortcuts in the standardizers (issue 14) give exactly what the full path gives."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmclean.standardize.phones import _split_all, split_numbers

PROPS = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Phone cells as CRMs write them: digits, punctuation, every separator split_numbers knows,
# the words "or"/"或" and the spaces around them.
PHONE_CHARS = st.sampled_from(list("0123456789 +-().,;/|\\\n\t、，；或ox#") + [" or ", " 或 ", "ext", "  "])
PHONE_CELLS = st.lists(PHONE_CHARS, max_size=30).map("".join)


@PROPS
@given(PHONE_CELLS)
@example("138 0013 8000 / 010-6552 9988")
@example("773/256-6035")
@example("1,234,567")
@example("555-1234 or 555-9876")
@example("  ")
def test_split_numbers_shortcut_equals_the_full_split(cell):
    assert split_numbers(cell) == _split_all(cell)
