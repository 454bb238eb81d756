"""Slack mrkdwn -> Notion rich text and blocks: every construct, and the splitting limits."""

from __future__ import annotations

from typing import Any

import pytest

from bolt_app.formats import notion_blocks as nb
from bolt_app.transcript.render import (
    date_block,
    date_line_day,
    inline,
    linked_ts,
    message_block,
    segments,
    ts_from_permalink,
    unescape,
)

NAMES = {"U1": "alice", "U2": "Bob Brown"}
PERMALINK = "https://acme.slack.com/archives/C1/p1790000000123456"


def name(user: str) -> str:
    return NAMES.get(user, user)


def styled(items: list[dict[str, Any]]) -> list[tuple[str, set[str], str | None]]:
    """(text, annotations on, link) per item: easy to compare."""
    return [
        (i["text"]["content"], {k for k, v in i["annotations"].items() if v}, nb.link_url(i))
        for i in items
    ]


@pytest.mark.parametrize(
    ("mrkdwn", "expected"),
    [
        ("plain", [("plain", set(), None)]),
        ("*bold*", [("bold", {"bold"}, None)]),
        ("_italic_", [("italic", {"italic"}, None)]),
        ("~gone~", [("gone", {"strikethrough"}, None)]),
        ("`a*b*c`", [("a*b*c", {"code"}, None)]),
        ("*bold _both_*", [("bold ", {"bold"}, None), ("both", {"bold", "italic"}, None)]),
        ("snake_case_name and 2*3*4", [("snake_case_name and 2*3*4", set(), None)]),
        ("hi <@U1>", [("hi @alice", set(), None)]),
        ("<@U2|bob>", [("@Bob Brown", set(), None)]),
        ("<#C123|general>", [("#general", set(), None)]),
        ("<!here> <!channel>", [("@here @channel", set(), None)]),
        ("<!subteam^S1|@oncall>", [("@oncall", set(), None)]),
        ("<https://x.io/a?b=1&amp;c=2|the docs>", [("the docs", set(), "https://x.io/a?b=1&c=2")]),
        ("<https://x.io>", [("https://x.io", set(), "https://x.io")]),
        ("<mailto:a@b.io|a@b.io>", [("a@b.io", set(), None)]),  # Notion links only http(s)
        ("a &amp; b &lt;tag&gt; &amp;lt;", [("a & b <tag> &lt;", set(), None)]),
        (":fire: :+1::skin-tone-2:", [(":fire: :+1::skin-tone-2:", set(), None)]),
        ("*<https://x.io|bold link>*", [("bold link", {"bold"}, "https://x.io")]),
    ],
)
def test_inline_constructs(mrkdwn: str, expected: list[tuple[str, set[str], str | None]]) -> None:
    assert styled(inline(mrkdwn, name)) == expected


def test_fences_and_quotes_become_their_own_segments() -> None:
    text = "before\n&gt; quoted one\n&gt; quoted two\n```\nx = 1 &lt; 2\n```\nafter"
    assert [(s.kind, s.text) for s in segments(text)] == [
        ("paragraph", "before"),
        ("quote", "quoted one\nquoted two"),
        ("code", "x = 1 &lt; 2"),
        ("paragraph", "after"),
    ]
    assert [(s.kind, s.text) for s in segments("```open fence\nrest")] == [
        ("code", "open fence\nrest")
    ]


def test_message_block_layout_with_time_link_author_children_and_files() -> None:
    message = {
        "ts": "1790000000.123456",
        "text": "look *here*\n```code &amp; more```\n> q",
        "files": [{"name": "graph.png", "permalink": "https://acme.slack.com/files/F1"}],
    }
    reply = message_block(
        {"ts": "1790000100.000001", "text": "ok"},
        author="bob",
        permalink="https://acme.slack.com/archives/C1/p1790000100000001"
        "?thread_ts=1790000000.123456&cid=C1",
        user_name=name,
    )
    block = message_block(
        message, author="alice", permalink=PERMALINK, user_name=name, replies=[reply]
    )

    rich = block["paragraph"]["rich_text"]
    assert nb.plain_text(block) == "14:13 UTC · alice: look here · graph.png"
    assert nb.link_url(rich[0]) == PERMALINK
    assert nb.link_url(rich[-1]) == "https://acme.slack.com/files/F1"
    children = nb.children_of(block)
    assert [c["type"] for c in children] == ["code", "quote", "paragraph"]
    assert nb.plain_text(children[0]) == "code & more"
    assert linked_ts(block) == "1790000000.123456"
    assert linked_ts(children[2]) == "1790000100.000001"


def test_reply_permalinks_carry_their_own_ts() -> None:
    url = "https://acme.slack.com/archives/C1/p1790000100000001?thread_ts=1790000000.1&cid=C1"
    assert ts_from_permalink(url) == "1790000100.000001"
    assert ts_from_permalink("https://example.com/nothing") is None


def test_date_lines_are_recognised() -> None:
    from datetime import date

    block = date_block(date(2026, 9, 21))
    assert nb.plain_text(block) == "2026-09-21 Monday"
    assert date_line_day(block) == "day:2026-09-21"
    assert date_line_day(nb.paragraph([nb.text("2026-09-21 Monday")])) is None


def test_long_text_is_split_at_2000_units_between_words() -> None:
    words = " ".join(["word"] * 1500)  # 7,499 characters
    block = message_block(
        {"ts": "1790000000.000001", "text": words}, author="a", permalink=PERMALINK, user_name=name
    )
    pieces = [i["text"]["content"] for i in block["paragraph"]["rich_text"][2:]]
    assert "".join(pieces) == words
    assert all(len(p) <= 2000 for p in pieces)
    assert all(p.endswith(" ") for p in pieces[:-1])  # cut after whitespace, not in a word


def test_multi_byte_text_is_split_by_utf16_units_never_inside_a_surrogate_pair() -> None:
    text = "🔥" * 1500  # 3,000 UTF-16 units, no whitespace
    block = message_block(
        {"ts": "1790000000.000001", "text": text}, author="a", permalink=PERMALINK, user_name=name
    )
    pieces = [i["text"]["content"] for i in block["paragraph"]["rich_text"][2:]]
    assert "".join(pieces) == text
    assert all(nb.utf16_len(p) <= 2000 for p in pieces)
    assert all(p == "🔥" * len(p) for p in pieces)


def test_over_100_rich_text_items_overflow_into_child_paragraphs() -> None:
    text = " ".join(f"*b{i}* x" for i in range(150))
    block = message_block(
        {"ts": "1790000000.000001", "text": text}, author="a", permalink=PERMALINK, user_name=name
    )
    assert len(block["paragraph"]["rich_text"]) == 100
    overflow = nb.children_of(block)
    assert overflow and all(c["type"] == "paragraph" for c in overflow)
    total = nb.plain_text(block) + "".join(nb.plain_text(c) for c in overflow)
    assert total.endswith("b149 x")


def test_unescape_order() -> None:
    assert unescape("&amp;lt; &lt;b&gt;") == "&lt; <b>"
