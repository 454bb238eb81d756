"""Unit tests for bolt_app.formats.notion_blocks: rich-text limits and the block builders."""

from __future__ import annotations

import pytest

from bolt_app.formats import notion_blocks as nb


def contents(items: list[nb.RichText]) -> list[str]:
    return [item["text"]["content"] for item in items]


# --- measuring and splitting text -------------------------------------------------------------


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert nb.utf16_len("abc") == 3
    assert nb.utf16_len("é") == 1
    assert nb.utf16_len("🔥") == 2
    assert nb.utf16_len("a🔥b") == 4


def test_short_text_is_untouched() -> None:
    assert nb.split_text("hello world") == ["hello world"]
    assert nb.split_text("x" * 2000) == ["x" * 2000]


def test_split_prefers_whitespace_near_the_limit() -> None:
    words = ("lorem ipsum dolor sit amet " * 200).strip()  # 5,399 chars
    pieces = nb.split_text(words)
    assert "".join(pieces) == words
    assert all(nb.utf16_len(piece) <= 2000 for piece in pieces)
    for piece in pieces[:-1]:
        assert piece.endswith(" "), "each cut falls right after a space"
        assert len(piece) > 2000 - nb.WORD_BOUNDARY_WINDOW


def test_split_without_whitespace_cuts_hard_at_2000() -> None:
    pieces = nb.split_text("a" * 4500)
    assert [len(p) for p in pieces] == [2000, 2000, 500]


def test_whitespace_outside_the_window_is_not_used() -> None:
    value = "word " + "x" * 3000
    pieces = nb.split_text(value)
    assert len(pieces[0]) == 2000  # the only space is ~2000 chars back: hard cut instead


def test_split_counts_emoji_as_two_units_and_never_splits_them() -> None:
    value = "🔥" * 1500  # 3,000 units
    pieces = nb.split_text(value)
    assert "".join(pieces) == value
    assert [nb.utf16_len(p) for p in pieces] == [2000, 1000]
    assert all(p == "🔥" * (len(p)) for p in pieces)


def test_odd_boundary_emoji_moves_to_the_next_piece() -> None:
    value = "a" + "🔥" * 1000  # 2,001 units; the cut would fall inside the last emoji
    pieces = nb.split_text(value)
    assert pieces == ["a" + "🔥" * 999, "🔥"]
    assert nb.utf16_len(pieces[0]) == 1999


def test_split_keeps_zwj_sequences_and_combining_marks_together() -> None:
    family = "👨\u200d👩\u200d👧"
    value = "a" * 1995 + family + "b" * 10
    pieces = nb.split_text(value)
    assert "".join(pieces) == value
    assert pieces[0] == "a" * 1995
    accented = "a" * 1999 + "e\u0301" + "z"
    pieces = nb.split_text(accented)
    assert pieces[1].startswith("e\u0301")


def test_split_rich_text_keeps_annotations_and_link_on_every_piece() -> None:
    item = nb.text("word " * 1000, bold=True, italic=True, link="https://example.com/x")
    pieces = nb.split_rich_text([item])
    assert len(pieces) == 3
    assert "".join(contents(pieces)) == "word " * 1000
    for piece in pieces:
        assert piece["annotations"] == item["annotations"]
        assert nb.link_url(piece) == "https://example.com/x"
        assert nb.utf16_len(piece["text"]["content"]) <= 2000


def test_split_rich_text_drops_links_longer_than_2000_but_keeps_the_text() -> None:
    long_url = "https://example.com/?q=" + "a" * 2000
    pieces = nb.split_rich_text([nb.text("see this", link=long_url)])
    assert contents(pieces) == ["see this"]
    assert nb.link_url(pieces[0]) is None
    ok_url = "https://example.com/" + "a" * 1900
    assert nb.link_url(nb.split_rich_text([nb.text("ok", link=ok_url)])[0]) == ok_url


def test_split_rich_text_drops_empty_items_and_passes_mentions_through() -> None:
    mention = {"type": "mention", "mention": {"type": "user", "user": {"id": "u1"}}}
    items = nb.split_rich_text([nb.text(""), mention, nb.text("x")])
    assert items == [mention, nb.text("x")]


def test_split_rich_text_does_not_mutate_its_input() -> None:
    item = nb.text("y " * 1500)
    before = repr(item)
    nb.split_rich_text([item])
    assert repr(item) == before


def test_merge_adjacent_joins_same_style_only() -> None:
    items = [nb.text("a"), nb.text("b"), nb.text("c", bold=True), nb.text("d", link="https://x")]
    merged = nb.merge_adjacent(items)
    assert contents(merged) == ["ab", "c", "d"]


# --- item count -------------------------------------------------------------------------------


def test_more_than_100_items_continue_in_following_paragraphs() -> None:
    items = [nb.text(f"{i} ", bold=i % 2 == 0) for i in range(250)]
    blocks = nb.paragraphs_from_rich(items)
    assert [b["type"] for b in blocks] == ["paragraph"] * 3
    assert [len(b["paragraph"]["rich_text"]) for b in blocks] == [100, 100, 50]
    assert "".join(nb.plain_text(b) for b in blocks) == "".join(f"{i} " for i in range(250))


def test_long_text_that_splits_past_100_items_still_fits() -> None:
    blocks = nb.paragraphs_from_rich([nb.text("z" * 2000 * 101)])
    assert [len(b["paragraph"]["rich_text"]) for b in blocks] == [100, 1]


def test_overflow_of_other_blocks_uses_the_given_continuation() -> None:
    items = [nb.text(str(i), code=i % 2 == 1) for i in range(120)]
    blocks = nb.blocks_with_overflow(nb.bulleted, items)
    assert [b["type"] for b in blocks] == ["bulleted_list_item", "paragraph"]
    code = nb.code_blocks("c" * 2000 * 150, "python")
    assert [b["type"] for b in code] == ["code", "code"]
    assert [len(b["code"]["rich_text"]) for b in code] == [100, 50]
    assert {b["code"]["language"] for b in code} == {"python"}


def test_empty_rich_text_still_gives_one_block() -> None:
    assert nb.paragraphs_from_rich([]) == [nb.paragraph([])]


# --- builders ---------------------------------------------------------------------------------


def test_text_builder_shape() -> None:
    item = nb.text("hi", code=True, link="https://example.com")
    assert item == {
        "type": "text",
        "text": {"content": "hi", "link": {"url": "https://example.com"}},
        "annotations": {"bold": False, "italic": False, "strikethrough": False, "code": True},
    }


def test_block_builders_shapes() -> None:
    rich = [nb.text("x")]
    assert nb.paragraph(rich) == {
        "object": "block",
        "type": "paragraph",
        "paragraph": {"rich_text": rich},
    }
    assert nb.heading(2, rich)["heading_2"]["is_toggleable"] is False
    assert nb.to_do(rich, checked=True)["to_do"]["checked"] is True
    assert nb.divider() == {"object": "block", "type": "divider", "divider": {}}
    callout = nb.callout(rich, "🤖")
    assert callout["callout"]["icon"] == {"type": "emoji", "emoji": "🤖"}
    child = nb.bulleted([nb.text("child")])
    parent = nb.numbered(rich, children=[child])
    assert parent["numbered_list_item"]["children"] == [child]
    assert nb.children_of(parent) == [child]
    assert nb.children_of(nb.with_children(parent, None)) == []
    assert nb.toggle(rich, [child])["toggle"]["children"] == [child]
    assert nb.quote(rich)["type"] == "quote"


def test_block_builders_split_long_text() -> None:
    block = nb.bulleted([nb.text("q" * 4100)])
    assert [len(i["text"]["content"]) for i in block["bulleted_list_item"]["rich_text"]] == [
        2000,
        2000,
        100,
    ]


def test_heading_limits() -> None:
    with pytest.raises(ValueError, match="1-3"):
        nb.heading(4, [])
    with pytest.raises(ValueError, match="toggleable"):
        nb.heading(2, [], children=[nb.paragraph([])])
    toggled = nb.heading(1, [nb.text("T")], toggleable=True, children=[nb.paragraph([])])
    assert toggled["heading_1"]["is_toggleable"] is True
    assert len(toggled["heading_1"]["children"]) == 1


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("python", "python"),
        ("py", "python"),
        ("TS", "typescript"),
        ("sh", "shell"),
        ("bash", "bash"),
        ("yml", "yaml"),
        ("c++", "c++"),
        ("cpp", "c++"),
        ("text", "plain text"),
        ("", "plain text"),
        (None, "plain text"),
        ("brainfuck", "plain text"),
    ],
)
def test_code_language_mapping(hint: str | None, expected: str) -> None:
    assert nb.code_language(hint) == expected


def test_code_block_shape() -> None:
    block = nb.code_block("print(1)", "py")
    assert block["code"]["language"] == "python"
    assert nb.plain_text(block) == "print(1)"


def test_plain_text_reads_response_shaped_blocks() -> None:
    response_block = {
        "object": "block",
        "id": "b1",
        "type": "heading_2",
        "heading_2": {
            "rich_text": [{"type": "text", "text": {"content": "Hi"}, "plain_text": "Hi"}],
            "is_toggleable": True,
        },
    }
    assert nb.plain_text(response_block) == "Hi"
    assert nb.plain_text(nb.divider()) == ""
