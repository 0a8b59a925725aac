"""link.names.same_given_name: a given name and a mistyped nickname of it are one name."""

from __future__ import annotations

import pytest

from crmclean.link.names import name_forms, same_given_name


def test_formal_names_know_their_nicknames():
    assert {"max", "maximilian"} <= set(name_forms()["maximilian"])


@pytest.mark.parametrize(
    "x, y",
    [
        ("mxa", "maximilian"),  # neighbours swapped in the nickname
        ("maximilian", "mxa"),  # either order
        ("maximillian", "maximilian"),  # a typo in the formal name itself
        ("robret", "robert"),
        ("helen", "helen"),
    ],
)
def test_same_given_name(x, y):
    assert same_given_name(x, y, 0.85)


@pytest.mark.parametrize(
    "x, y",
    [
        ("maxine", "maximilian"),  # starts like the nickname `max`: a prefix is not a typo
        ("ak", "albert"),  # `al` mistyped: two letters are never compared fuzzily
        ("mia", "maximilian"),
        ("oliver", "olga"),
    ],
)
def test_different_given_names(x, y):
    assert not same_given_name(x, y, 0.85)
