"""Notion's documented objects against the adapter's parsers and FakeNotion.

Each fixture is written from Notion's API reference for version 2025-09-03 (page,
block children, data source, the query list, the error envelope). The adapter must
read them; FakeNotion's answers must have their shape, errors included.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from notion_client import Client
from notion_client.errors import APIResponseError, HTTPResponseError

from bolt_app.adapters.notion import (
    _is_live,
    _page,
    _property_text,
    parse_schema,
    translate_error,
)
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import NOTION_TOKEN
from tests.contract.shapes import assert_matches, fixture

# -- the adapter reads the documented shapes --------------------------------------------------


def test_a_page_object() -> None:
    page = fixture("notion/page")
    parsed = _page(page)
    assert (parsed.id, parsed.url) == (page["id"], page["url"])
    assert _is_live(page)
    assert _property_text(page, "Incident") == "INC-42"
    for flag in ("in_trash", "archived", "is_archived"):
        assert not _is_live({**page, flag: True}), flag


def test_a_data_source_object() -> None:
    schema = parse_schema("d9824bdc-8445-4327-be8b-5b47500af6ce", fixture("notion/data_source"))
    assert schema.data_source_id == "1a44be12-0953-4631-b498-9e5817518db8"
    assert schema.incident == "Incident"


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("validation_error", False),
        ("object_not_found", False),
        ("rate_limited", True),
        ("service_overload", True),
    ],
)
def test_the_error_envelope(code: str, retryable: bool) -> None:
    body = fixture("notion/errors")[code]
    headers = httpx.Headers({"retry-after": "30"} if body["status"] in (429, 529) else {})
    raised = APIResponseError(
        body["code"],
        body["status"],
        body["message"],
        headers,
        json.dumps(body),
        body.get("additional_data"),
        body["request_id"],
    )
    error = translate_error(raised, missing="the page is gone")
    assert error.status == body["status"]
    assert error.retryable is retryable
    if retryable:
        assert error.retry_after == 30
    if code == "object_not_found":
        assert error.reason == "the page is gone"


# -- FakeNotion answers in the documented shapes ------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeNotion]:
    with FakeNotion() as server:
        yield server


@pytest.fixture
def client(fake: FakeNotion) -> Iterator[Client]:
    notion = Client(
        auth=NOTION_TOKEN,
        base_url=fake.base_url,
        logger=logging.getLogger("contract"),
        retry=False,  # as the bot runs it: a 429 is answered, not slept on
    )
    yield notion
    notion.close()


def _rich(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content}}]


def test_fake_pages_blocks_and_data_sources(fake: FakeNotion, client: Client) -> None:
    _database, data_source_id = fake.add_database()
    source = client.data_sources.retrieve(data_source_id=data_source_id)
    assert_matches(source, fixture("notion/data_source"), _SOURCE_NOT_MODELLED)
    created = client.pages.create(
        parent={"type": "data_source_id", "data_source_id": data_source_id},
        properties={
            "Name": {"title": _rich("INC-42: Checkout down")},
            "Incident": {"rich_text": _rich("INC-42")},
            "Status": {"select": {"name": "Active"}},
        },
    )
    documented = fixture("notion/page")
    assert_matches(created, documented, _PAGE_NOT_MODELLED)
    assert_matches(client.pages.retrieve(page_id=created["id"]), documented, _PAGE_NOT_MODELLED)
    paragraph = {"type": "paragraph", "paragraph": {"rich_text": _rich("09:12 UTC · alice")}}
    appended = client.blocks.children.append(block_id=created["id"], children=[paragraph])
    listed = client.blocks.children.list(block_id=created["id"])
    for answer in (appended, listed):
        assert_matches(answer, fixture("notion/block_children"), _BLOCK_NOT_MODELLED)
    query = client.data_sources.query(data_source_id=data_source_id)
    assert_matches(query, fixture("notion/data_source_query"))
    in_a_list = {k: v for k, v in documented.items() if k != "request_id"}  # a response's
    assert_matches(query["results"][0], in_a_list, _PAGE_NOT_MODELLED)


def test_fake_error_envelopes(fake: FakeNotion, client: Client) -> None:
    documented = fixture("notion/errors")
    page_id = fake.add_page("Errors")
    too_many = [
        {"type": "paragraph", "paragraph": {"rich_text": _rich(str(i))}} for i in range(101)
    ]
    answers: dict[str, Any] = {}
    with pytest.raises(APIResponseError) as refused:
        client.blocks.children.append(block_id=page_id, children=too_many)
    answers["validation_error"] = json.loads(refused.value.body)
    with pytest.raises(APIResponseError) as missing:
        client.pages.retrieve(page_id="2f1ad7f2a4b34bd3a7b2c1d0e9f8a7b6")
    answers["object_not_found"] = json.loads(missing.value.body)
    for status, code in ((429, "rate_limited"), (529, "service_overload")):
        fake.inject("blocks.children.list", status=status, retry_after=30)
        # notion-client knows no `service_overload` code: a 529 is its generic error.
        with pytest.raises(HTTPResponseError) as limited:
            client.blocks.children.list(block_id=page_id)
        answers[code] = json.loads(limited.value.body)
        assert limited.value.headers.get("retry-after") == "30"
    for code, body in answers.items():
        assert isinstance(body, dict), code
        assert_matches(body, documented[code])
        assert (body["status"], body["code"]) == (documented[code]["status"], code)


#: Fields of Notion's objects the fake leaves out (none, today).
_PAGE_NOT_MODELLED: frozenset[str] = frozenset()
_BLOCK_NOT_MODELLED: frozenset[str] = frozenset()
_SOURCE_NOT_MODELLED: frozenset[str] = frozenset()
