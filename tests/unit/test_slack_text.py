"""Slack's escaped markup in a title, shown right in each place."""

from __future__ import annotations

import pytest

from bolt_app.core.naming import channel_name
from bolt_app.formats.slack_text import for_message, readable, sluggable

TYPED = (
    "Checkout down for <@U024BE7LH|bob>, see <https://status.example.com> in <#C024BE7LR|general>"
)


def test_readable_names_people_channels_and_links() -> None:
    assert readable(TYPED) == ("Checkout down for @bob, see https://status.example.com in #general")
    assert readable("see <https://x.example/a?b=1|the status page>") == "see the status page"
    assert readable("<!here> and <!subteam^S1|@oncall> <@U1>") == "@here and @oncall @U1"
    assert readable("mail <mailto:a@example.com|a@example.com>") == "mail a@example.com"


def test_a_channel_name_has_no_scheme_and_no_markup() -> None:
    assert channel_name("inc", 42, sluggable(TYPED)) == (
        "inc-42-checkout-down-for-bob-see-status-example-com-in-general"
    )
    assert sluggable("<https://x.example/p|Grafana> is red") == "Grafana is red"


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        (TYPED, TYPED),  # people, channels and links stay live
        ("<!here> db is down", "&lt;!here&gt; db is down"),  # never a ping
        ("<!channel>", "&lt;!channel&gt;"),
        ("p99 <5ms & rising >", "p99 &lt;5ms &amp; rising &gt;"),
        ("<https://x.example/?a=1&b=2|A & B>", "<https://x.example/?a=1&amp;b=2|A &amp; B>"),
    ],
)
def test_in_a_message_only_mentions_and_links_stay_markup(title: str, shown: str) -> None:
    assert for_message(title) == shown
