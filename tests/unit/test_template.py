"""Unit tests for bolt_app.formats.template: Markdown template -> Notion blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.template import (
    MAX_BLOCK_DEPTH,
    TRANSCRIPT_HEADING,
    TemplateError,
    fill_placeholders,
    is_transcript_heading,
    load_template,
    render_template,
)

VALUES = {
    "incident": "INC-42",
    "title": "Checkout is down",
    "severity": "P1",
    "commander": "@alice",
    "channel": "https://example.slack.com/archives/C123",
    "declared_at": "2025-01-02 03:04 UTC",
}


def render(markdown: str, values: dict[str, str] | None = None) -> list[nb.Block]:
    """Rendered blocks without the transcript heading that every render appends."""
    blocks = render_template(markdown, VALUES if values is None else values)
    assert is_transcript_heading(blocks[-1]) or any(is_transcript_heading(b) for b in blocks)
    return [b for b in blocks if not _is_appended_transcript(b)]


def _is_appended_transcript(block: nb.Block) -> bool:
    return is_transcript_heading(block) and nb.plain_text(block) == TRANSCRIPT_HEADING


def types(blocks: list[nb.Block]) -> list[str]:
    return [b["type"] for b in blocks]


def rich(block: nb.Block) -> list[dict[str, Any]]:
    return nb.rich_text_of(block)


def flags(item: dict[str, Any]) -> set[str]:
    return {name for name, on in item["annotations"].items() if on}


def depth(block: nb.Block) -> int:
    return 1 + max((depth(child) for child in nb.children_of(block)), default=0)


# --- block constructs ------------------------------------------------------------------------


def test_headings_h1_to_h3_and_deeper_become_heading_3() -> None:
    blocks = render("# One\n## Two\n### Three\n#### Four\n###### Six\n")
    assert types(blocks) == ["heading_1", "heading_2", "heading_3", "heading_3", "heading_3"]
    assert [nb.plain_text(b) for b in blocks] == ["One", "Two", "Three", "Four", "Six"]
    assert all(b[b["type"]]["is_toggleable"] is False for b in blocks)


def test_paragraphs_join_soft_breaks_with_a_space() -> None:
    blocks = render("first line\nsecond line\n\nnext paragraph\n")
    assert types(blocks) == ["paragraph", "paragraph"]
    assert nb.plain_text(blocks[0]) == "first line second line"
    assert len(rich(blocks[0])) == 1, "same-style pieces are merged into one item"


def test_hard_break_is_a_newline() -> None:
    blocks = render("one  \ntwo\n")
    assert nb.plain_text(blocks[0]) == "one\ntwo"


def test_bulleted_and_numbered_lists_with_nesting() -> None:
    blocks = render("- a\n  - a1\n  - a2\n- b\n\n1. one\n2. two\n   - two-a\n")
    assert types(blocks) == [
        "bulleted_list_item",
        "bulleted_list_item",
        "numbered_list_item",
        "numbered_list_item",
    ]
    children = nb.children_of(blocks[0])
    assert types(children) == ["bulleted_list_item", "bulleted_list_item"]
    assert [nb.plain_text(c) for c in children] == ["a1", "a2"]
    assert nb.children_of(blocks[1]) == []
    assert [nb.plain_text(c) for c in nb.children_of(blocks[3])] == ["two-a"]


def test_nesting_deeper_than_notion_allows_is_flattened_in_order() -> None:
    markdown = "- l1\n  - l2\n    - l3\n      - l4\n        - l5\n    - l3b\n- next\n"
    blocks = render(markdown)
    assert all(depth(b) <= MAX_BLOCK_DEPTH for b in blocks)
    top = blocks[0]
    level2 = nb.children_of(top)
    assert [nb.plain_text(b) for b in level2] == ["l2"]
    level3 = nb.children_of(level2[0])
    assert [nb.plain_text(b) for b in level3] == ["l3", "l4", "l5", "l3b"]
    assert all(nb.children_of(b) == [] for b in level3)
    assert nb.plain_text(blocks[1]) == "next"


def test_task_items_become_to_dos() -> None:
    blocks = render("- [ ] open task\n- [x] done task\n- [X] also done\n- plain [ ] item\n")
    assert types(blocks) == ["to_do", "to_do", "to_do", "bulleted_list_item"]
    assert [b["to_do"]["checked"] for b in blocks[:3]] == [False, True, True]
    assert nb.plain_text(blocks[0]) == "open task"
    assert nb.plain_text(blocks[3]) == "plain [ ] item"


def test_task_item_keeps_inline_formatting_and_children() -> None:
    blocks = render("- [ ] **fix** it\n  - detail\n")
    assert types(blocks) == ["to_do"]
    assert flags(rich(blocks[0])[0]) == {"bold"}
    assert nb.plain_text(blocks[0]) == "fix it"
    assert types(nb.children_of(blocks[0])) == ["bulleted_list_item"]


def test_blockquote_becomes_quote_with_later_paragraphs_as_children() -> None:
    blocks = render("> first *line*\n> same paragraph\n>\n> second paragraph\n")
    assert types(blocks) == ["quote"]
    assert nb.plain_text(blocks[0]) == "first line same paragraph"
    assert [nb.plain_text(c) for c in nb.children_of(blocks[0])] == ["second paragraph"]


def test_fenced_and_indented_code() -> None:
    markdown = "```py\nprint('{incident}')\n```\n\n```nonsense\nx\n```\n\n    indented\n"
    blocks = render(markdown)
    assert types(blocks) == ["code", "code", "code"]
    assert blocks[0]["code"]["language"] == "python"
    assert nb.plain_text(blocks[0]) == "print('INC-42')"
    assert blocks[1]["code"]["language"] == "plain text"
    assert blocks[2]["code"]["language"] == "plain text"
    assert nb.plain_text(blocks[2]) == "indented"


def test_thematic_break_is_a_divider() -> None:
    assert types(render("a\n\n---\n\nb\n")) == ["paragraph", "divider", "paragraph"]


def test_html_comments_are_dropped_and_other_html_is_text() -> None:
    blocks = render("<!-- a note for authors -->\n\n<div>kept</div>\n")
    assert types(blocks) == ["paragraph"]
    assert nb.plain_text(blocks[0]) == "<div>kept</div>"


def test_inline_annotations() -> None:
    blocks = render(
        "**b** *i* ~~s~~ `c` ***bi*** [link](https://example.com/x) **[bl](https://e.com)**\n"
    )
    items = rich(blocks[0])
    by_text = {item["text"]["content"]: item for item in items}
    assert flags(by_text["b"]) == {"bold"}
    assert flags(by_text["i"]) == {"italic"}
    assert flags(by_text["s"]) == {"strikethrough"}
    assert flags(by_text["c"]) == {"code"}
    assert flags(by_text["bi"]) == {"bold", "italic"}
    assert nb.link_url(by_text["link"]) == "https://example.com/x"
    assert flags(by_text["bl"]) == {"bold"}
    assert nb.link_url(by_text["bl"]) == "https://e.com"


def test_relative_links_keep_text_but_lose_the_link() -> None:
    items = rich(render("[see impact](#impact) and [doc](other.md)\n")[0])
    assert all(nb.link_url(item) is None for item in items)
    assert "".join(i["text"]["content"] for i in items) == "see impact and doc"


def test_image_becomes_a_link_with_its_alt_text() -> None:
    items = rich(render("![graph](https://example.com/g.png)\n")[0])
    assert items[0]["text"]["content"] == "graph"
    assert nb.link_url(items[0]) == "https://example.com/g.png"


# --- placeholders ----------------------------------------------------------------------------


def test_placeholders_are_filled_everywhere_text_appears() -> None:
    markdown = (
        "# {incident}: {title}\n\n"
        "**{incident}** · severity {severity} · commander {commander} · declared {declared_at}\n\n"
        "- channel: [{channel}]({channel})\n"
        "- custom: {custom}\n"
    )
    blocks = render(markdown, {**VALUES, "custom": "yes"})
    assert nb.plain_text(blocks[0]) == "INC-42: Checkout is down"
    assert nb.plain_text(blocks[1]) == (
        "INC-42 · severity P1 · commander @alice · declared 2025-01-02 03:04 UTC"
    )
    assert flags(rich(blocks[1])[0]) == {"bold"}
    link_item = rich(blocks[2])[-1]
    assert link_item["text"]["content"] == VALUES["channel"]
    assert nb.link_url(link_item) == VALUES["channel"]
    assert nb.plain_text(blocks[3]) == "custom: yes"


def test_unknown_placeholders_and_other_braces_stay() -> None:
    blocks = render("{unknown} {incident} {not a key} {} {{incident}} {1x}\n")
    assert nb.plain_text(blocks[0]) == "{unknown} INC-42 {not a key} {} {INC-42} {1x}"


def test_fill_placeholders_directly() -> None:
    assert fill_placeholders("{a}-{b}", {"a": "1"}) == "1-{b}"


@pytest.mark.parametrize(
    "title",
    [
        "*bold* and _it_",
        "[x](https://evil.example)",
        "# not a heading",
        "- not a list",
        "[ ] not a task",
        "`code` <b>html</b> ~~s~~",
        "line\n\nbreak",
    ],
)
def test_values_cannot_change_the_structure(title: str) -> None:
    markdown = "## {title}\n\n- {title}\n\n{title}\n"
    blocks = render(markdown, {**VALUES, "title": title})
    assert types(blocks) == ["heading_2", "bulleted_list_item", "paragraph"]
    for block in blocks:
        assert nb.plain_text(block) == title
        assert all(flags(item) == set() for item in rich(block))
        assert all(nb.link_url(item) is None for item in rich(block))


def test_long_values_are_split_at_the_limit() -> None:
    blocks = render("{title}\n", {"title": "word " * 1000})
    assert all(nb.utf16_len(i["text"]["content"]) <= 2000 for i in rich(blocks[0]))
    assert nb.plain_text(blocks[0]) == "word " * 1000


# --- the transcript heading ------------------------------------------------------------------


def transcript_headings(blocks: list[nb.Block]) -> list[nb.Block]:
    return [b for b in blocks if is_transcript_heading(b)]


def test_template_without_transcript_heading_gets_one_appended() -> None:
    blocks = render_template("# Notes\n\ntext\n", VALUES)
    assert transcript_headings(blocks) == [blocks[-1]]
    assert blocks[-1]["type"] == "heading_2"
    assert blocks[-1]["heading_2"]["is_toggleable"] is True
    assert nb.plain_text(blocks[-1]) == TRANSCRIPT_HEADING


@pytest.mark.parametrize("text", ["Slack transcript", "SLACK TRANSCRIPT", "  slack Transcript  "])
def test_template_heading_becomes_toggleable_whatever_the_case(text: str) -> None:
    blocks = render_template(f"# Notes\n\n### {text}\n\n## After\n", VALUES)
    found = transcript_headings(blocks)
    assert len(found) == 1
    assert found[0]["type"] == "heading_3"
    assert found[0]["heading_3"]["is_toggleable"] is True
    assert types(blocks) == ["heading_1", "heading_3", "heading_2"], "nothing appended"


def test_only_the_first_matching_heading_is_the_transcript_heading() -> None:
    blocks = render_template("## Slack transcript\n\n## Slack transcript\n", VALUES)
    assert [b["heading_2"]["is_toggleable"] for b in blocks] == [True, False]


def test_a_nested_or_partial_match_does_not_count() -> None:
    blocks = render_template("## Slack transcripts\n\n- ## Slack transcript\n", VALUES)
    assert len(transcript_headings(blocks)) == 1
    assert blocks[-1]["heading_2"]["is_toggleable"] is True
    assert not blocks[0]["heading_2"]["is_toggleable"]


def test_empty_template_is_just_the_transcript_heading() -> None:
    blocks = render_template("", VALUES)
    assert len(blocks) == 1 and is_transcript_heading(blocks[0])


def test_is_transcript_heading_rejects_other_blocks() -> None:
    assert not is_transcript_heading(nb.heading(2, [nb.text(TRANSCRIPT_HEADING)]))
    assert not is_transcript_heading(nb.paragraph([nb.text(TRANSCRIPT_HEADING)]))
    assert not is_transcript_heading(nb.toggle([nb.text(TRANSCRIPT_HEADING)]))


# --- the default template and big templates ---------------------------------------------------


def test_default_template_has_the_sections() -> None:
    blocks = render_template(load_template(None), VALUES)
    headings = [nb.plain_text(b) for b in blocks if b["type"].startswith("heading_")]
    for section in [
        "Summary",
        "Impact",
        "Timeline",
        "Root cause",
        "What went well",
        "What went wrong",
        "Action items",
        "Slack transcript",
    ]:
        assert section in headings
    assert len(transcript_headings(blocks)) == 1
    action_index = headings.index("Action items")
    assert action_index < headings.index("Slack transcript")
    assert "to_do" in types(blocks)
    header = nb.plain_text(blocks[0])
    assert header.startswith("INC-42 · severity P1 · commander @alice")
    assert "{" not in "".join(nb.plain_text(b) for b in blocks)
    assert len(blocks) <= 100, "the default template fits in the create call"


def test_default_template_blocks_obey_notion_limits() -> None:
    blocks = render_template(load_template(None), VALUES)
    for block in blocks:
        assert depth(block) <= MAX_BLOCK_DEPTH
        assert len(rich(block)) <= nb.MAX_RICH_TEXT_ITEMS


def test_load_template_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "t.md"
    path.write_text("# Mine {incident}\n", encoding="utf-8")
    assert load_template(str(path)) == "# Mine {incident}\n"


def test_load_template_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.md"
    with pytest.raises(TemplateError, match=r"nope\.md"):
        load_template(str(missing))


def test_template_with_more_than_100_blocks() -> None:
    markdown = "\n\n".join(f"paragraph {i}" for i in range(150)) + "\n\n## Slack transcript\n"
    blocks = render_template(markdown, VALUES)
    assert len(blocks) == 151
    assert [nb.plain_text(b) for b in blocks[:150]] == [f"paragraph {i}" for i in range(150)]
    assert is_transcript_heading(blocks[-1])


def test_paragraph_with_more_than_100_items_continues_in_the_next_paragraph() -> None:
    markdown = " ".join(f"**b{i}** n{i}" for i in range(80)) + "\n"
    blocks = render(markdown)
    assert types(blocks) == ["paragraph", "paragraph"]
    assert [len(rich(b)) for b in blocks] == [100, 60]
