"""Channel names: Slack's rules, our conventions."""

from __future__ import annotations

import re

import pytest

from bolt_app.core.naming import MAX_CHANNEL_NAME, channel_name, slugify

SLACK_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Checkout is down", "inc-42-checkout-is-down"),
        ("  Payments: 500s on /v2/charge!! ", "inc-42-payments-500s-on-v2-charge"),
        ("Café au lait déjà vu", "inc-42-cafe-au-lait-deja-vu"),
        ("🔥🔥🔥", "inc-42"),
        ("!!!", "inc-42"),
        ("数据库宕机", "inc-42"),
        ("DB_primary failover", "inc-42-db-primary-failover"),
    ],
)
def test_channel_names(title: str, expected: str) -> None:
    assert channel_name("inc", 42, title) == expected


def test_long_titles_are_cut_at_a_word_and_fit_with_a_suffix() -> None:
    title = "word " * 200
    for attempt in (1, 2, 13):
        name = channel_name("inc", 12345, title, attempt)
        assert len(name) <= MAX_CHANNEL_NAME
        assert SLACK_NAME.match(name)
        assert not name.startswith("inc-12345-word-") or "--" not in name
    assert channel_name("inc", 1, title, 2).endswith("word-2")


def test_suffix_after_name_taken() -> None:
    assert channel_name("inc", 42, "db", 2) == "inc-42-db-2"
    assert channel_name("inc", 42, "🔥", 3) == "inc-42-3"


def test_slug_is_ascii_digits_and_hyphens() -> None:
    assert slugify("A--B  c_d.e") == "a-b-c-d-e"
