"""Tests for bolt_app.adapters.notion: pure helpers first, then the gateway against FakeNotion.

The gateway tests use the real notion-client over HTTP, so they check what is sent on the
wire (one POST per create, chunk sizes, properties) and how real client errors map to ours.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from notion_client import Client
from notion_client.errors import APIResponseError, RequestTimeoutError, UnknownHTTPResponseError

from bolt_app.adapters.notion import (
    MAX_REQUEST_BYTES,
    NotionError,
    NotionGateway,
    NotionPartialWrite,
    NotionSchemaError,
    NotionTimeout,
    PostmortemFields,
    PostmortemSchema,
    block_count,
    build_properties,
    chunk_blocks,
    iso_utc,
    mark_url,
    parse_schema,
    plan_block,
    schema_warnings,
    split_for_create,
    status_option,
    translate_error,
)
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.template import is_transcript_heading, load_template, render_template

# --- helpers -----------------------------------------------------------------------------------


def paragraphs(count: int, prefix: str = "p") -> list[nb.Block]:
    return [nb.paragraph([nb.text(f"{prefix}{i}")]) for i in range(count)]


def nested(levels: int, label: str = "n") -> nb.Block:
    """A bulleted item with ``levels`` levels of single children below it."""
    block = nb.bulleted([nb.text(f"{label}{levels}")])
    for level in range(levels - 1, -1, -1):
        block = nb.bulleted([nb.text(f"{label}{level}")], children=[block])
    return block


def nesting(block: nb.Block) -> int:
    return max((1 + nesting(child) for child in nb.children_of(block)), default=0)


def texts(blocks: list[nb.Block]) -> list[str]:
    return [nb.plain_text(block) for block in blocks]


# --- chunking ----------------------------------------------------------------------------------


def test_chunks_of_at_most_100_top_level_blocks_in_order() -> None:
    blocks = paragraphs(250)
    chunks = chunk_blocks(blocks)
    assert [len(chunk) for chunk in chunks] == [100, 100, 50]
    assert [block for chunk in chunks for block in chunk] == blocks


def test_no_blocks_no_chunks() -> None:
    assert chunk_blocks([]) == []
    assert split_for_create([]) == ([], [])


def test_chunks_count_nested_children_towards_1000() -> None:
    parent = nb.bulleted([nb.text("parent")], children=paragraphs(10, "c"))  # 11 blocks
    chunks = chunk_blocks([parent] * 200)
    assert [len(chunk) for chunk in chunks] == [90, 90, 20]
    assert all(sum(block_count(b) for b in chunk) <= 1000 for chunk in chunks)


def test_exactly_1000_blocks_fit_one_request() -> None:
    parent = nb.bulleted([nb.text("parent")], children=paragraphs(9, "c"))  # 10 blocks
    assert [len(chunk) for chunk in chunk_blocks([parent] * 100)] == [100]


def test_two_levels_of_nesting_are_sent_inline() -> None:
    block = nested(2)
    planned = plan_block(block)
    assert planned.block == block
    assert planned.deferred == []


def test_deeper_nesting_is_deferred_to_follow_up_requests() -> None:
    block = nested(4)
    planned = plan_block(block)
    assert nb.children_of(planned.block) == []
    assert planned.deferred == nb.children_of(block)
    assert all(nesting(b) <= 2 for chunk in chunk_blocks([block, nested(5)]) for b in chunk)


def test_children_arrays_over_100_are_deferred() -> None:
    toggle = nb.toggle([nb.text("many")], children=paragraphs(150))
    planned = plan_block(toggle)
    assert planned.deferred == paragraphs(150)
    assert nb.children_of(planned.block) == []


def test_chunks_stay_under_the_byte_budget() -> None:
    big = [nb.paragraph([nb.text("x" * 2000)] * 10) for _ in range(100)]  # ~20 KB each
    chunks = chunk_blocks(big)
    assert len(chunks) > 1
    for chunk in chunks:
        assert sum(len(str(block)) for block in chunk) < MAX_REQUEST_BYTES * 1.2


def test_split_for_create_sends_the_first_100_inline() -> None:
    blocks = paragraphs(250)
    inline, rest = split_for_create(blocks)
    assert inline == blocks[:100]
    assert rest == blocks[100:]


def test_split_for_create_stops_before_a_block_needing_deferral() -> None:
    blocks = [*paragraphs(3), nested(4), *paragraphs(3, "q")]
    inline, rest = split_for_create(blocks)
    assert inline == blocks[:3]
    assert rest == blocks[3:]


# --- schema and properties ---------------------------------------------------------------------


def data_source(properties: dict[str, str], ds_id: str = "ds-1") -> dict[str, Any]:
    return {
        "object": "data_source",
        "id": ds_id,
        "properties": {
            name: {"id": name[:4], "name": name, "type": kind} for name, kind in properties.items()
        },
    }


FULL_SCHEMA = {
    "Name": "title",
    "Incident": "rich_text",
    "Severity": "select",
    "Status": "select",
    "Declared": "date",
    "Channel": "url",
}


def test_parse_schema_full() -> None:
    schema = parse_schema("db-1", data_source(FULL_SCHEMA))
    assert schema == PostmortemSchema(
        database_id="db-1",
        data_source_id="ds-1",
        title="Name",
        incident="Incident",
        severity="Severity",
        status="Status",
        declared="Declared",
        channel="Channel",
    )


def test_parse_schema_custom_title_and_case_insensitive_names() -> None:
    source = data_source({"Postmortem": "title", "incident ": "rich_text", "severity": "select"})
    schema = parse_schema("db-1", source)
    assert schema.title == "Postmortem"
    assert schema.incident == "incident "
    assert schema.severity == "severity"
    assert schema.status is None and schema.declared is None and schema.channel is None


def test_optional_properties_of_the_wrong_type_are_ignored_and_reported() -> None:
    source = data_source({**FULL_SCHEMA, "Status": "checkbox", "Channel": "rich_text"})
    schema = parse_schema("db-1", source)
    assert schema.status is None
    assert schema.channel is None
    warnings = schema_warnings(source)
    assert len(warnings) == 2
    assert any('"Status" is a checkbox property' in warning for warning in warnings)


def test_missing_incident_property_is_a_schema_error_naming_the_fix() -> None:
    with pytest.raises(NotionSchemaError) as raised:
        parse_schema("db-1", data_source({"Name": "title"}))
    assert '"Incident"' in raised.value.reason
    assert "Text property" in raised.value.reason
    assert raised.value.retryable is False


def test_incident_property_of_the_wrong_type_is_a_schema_error() -> None:
    with pytest.raises(NotionSchemaError, match="change it to Text"):
        parse_schema("db-1", data_source({"Name": "title", "Incident": "number"}))


SCHEMA = parse_schema("db-1", data_source(FULL_SCHEMA))


def test_build_properties_all_fields() -> None:
    fields = PostmortemFields(
        label="INC-42",
        title="Checkout is down",
        severity="P1",
        status="mitigated",
        declared_at=datetime(2025, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        channel_url="https://example.slack.com/archives/C1",
    )
    props = build_properties(SCHEMA, fields)
    assert props["Name"]["title"][0]["text"]["content"] == "INC-42: Checkout is down"
    assert props["Incident"]["rich_text"][0]["text"]["content"] == "INC-42"
    assert props["Severity"] == {"select": {"name": "P1"}}
    assert props["Status"] == {"select": {"name": "Mitigated"}}
    assert props["Declared"] == {"date": {"start": "2025-01-02T03:04:05+00:00"}}
    assert props["Channel"] == {"url": "https://example.slack.com/archives/C1"}


def test_build_properties_only_writes_what_exists_and_is_set() -> None:
    schema = parse_schema("db-1", data_source({"Title": "title", "Incident": "rich_text"}))
    fields = PostmortemFields(label="INC-7", title="x", severity="P2", status="active")
    assert set(build_properties(schema, fields)) == {"Title", "Incident"}
    assert set(build_properties(SCHEMA, PostmortemFields(label="INC-7", title="x"))) == {
        "Name",
        "Incident",
    }


def test_page_title_is_not_prefixed_twice() -> None:
    assert PostmortemFields(label="INC-1", title="INC-1: db").page_title == "INC-1: db"


def test_long_titles_are_split_for_the_title_property() -> None:
    props = build_properties(SCHEMA, PostmortemFields(label="INC-1", title="t" * 5000))
    assert all(nb.utf16_len(i["text"]["content"]) <= 2000 for i in props["Name"]["title"])


def test_status_options() -> None:
    assert [status_option(s) for s in ("active", "resolved", "postmortem", "done", "canceled")] == [
        "Active",
        "Resolved",
        "Postmortem",
        "Done",
        "Canceled",
    ]
    with pytest.raises(ValueError, match="unknown incident status"):
        status_option("exploded")


def test_iso_utc_treats_naive_as_utc() -> None:
    assert iso_utc(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02T03:04:05+00:00"
    assert iso_utc(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05+00:00"


# --- error mapping -----------------------------------------------------------------------------


def api_error(status: int, code: str, headers: dict[str, str] | None = None) -> APIResponseError:
    return APIResponseError(
        code=code,
        status=status,
        message=f"{code} happened",
        headers=httpx.Headers(headers or {}),
        raw_body_text="{}",
    )


@pytest.mark.parametrize(
    ("status", "code", "reason", "retryable"),
    [
        (401, "unauthorized", "the Notion token is invalid or revoked", False),
        (429, "rate_limited", "Notion is rate-limiting us", True),
        (400, "validation_error", "Notion rejected the request as invalid", False),
        (409, "conflict_error", "Notion reported a conflicting edit", True),
        (500, "internal_server_error", "Notion returned 500", True),
        (503, "service_unavailable", "Notion returned 503", True),
        (404, "object_not_found", "MISSING", False),
    ],
)
def test_api_errors_map_to_human_reasons(
    status: int, code: str, reason: str, retryable: bool
) -> None:
    error = translate_error(api_error(status, code), missing="MISSING")
    assert type(error) is NotionError
    assert (error.reason, error.status, error.code, error.retryable) == (
        reason,
        status,
        code,
        retryable,
    )
    assert error.detail == f"{code} happened"


def test_rate_limit_carries_retry_after() -> None:
    error = translate_error(api_error(429, "rate_limited", {"Retry-After": "7"}), missing="")
    assert error.retry_after == 7.0


def test_non_json_502_is_notion_returned_502() -> None:
    error = translate_error(UnknownHTTPResponseError(status=502), missing="")
    assert (error.reason, error.status, error.code, error.retryable) == (
        "Notion returned 502",
        502,
        None,
        True,
    )


def test_timeouts_and_dropped_connections_are_ambiguous() -> None:
    assert isinstance(translate_error(RequestTimeoutError(), missing=""), NotionTimeout)
    dropped = translate_error(httpx.RemoteProtocolError("Server disconnected"), missing="")
    assert isinstance(dropped, NotionTimeout)
    refused = translate_error(httpx.ConnectError("refused"), missing="")
    assert type(refused) is NotionError and refused.retryable
    assert isinstance(translate_error(api_error(504, "gateway_timeout"), missing=""), NotionTimeout)
    malformed = translate_error(httpx.UnsupportedProtocol("ftp"), missing="")
    assert type(malformed) is NotionError and not malformed.retryable


# --- the client ---------------------------------------------------------------------------------


def test_gateway_keeps_the_configured_log_level_and_adds_no_handlers() -> None:
    base = logging.getLogger("test_notion_adapter.gateway")
    client_logger = base.getChild("client")
    client_logger.setLevel(logging.ERROR)
    gateway = NotionGateway(
        token="secret-token",
        base_url="http://127.0.0.1:9/",
        database_id="db",
        timeout_s=0.5,
        logger=base,
    )
    try:
        assert client_logger.level == logging.ERROR
        assert client_logger.handlers == []
        assert gateway.timeout_s == 0.5
    finally:
        gateway.close()
        client_logger.setLevel(logging.NOTSET)


def test_unreachable_notion_is_a_retryable_error() -> None:
    gateway = NotionGateway(token="t", base_url="http://127.0.0.1:9", database_id="db", timeout_s=2)
    try:
        with pytest.raises(NotionError) as raised:
            gateway.schema()
    finally:
        gateway.close()
    assert raised.value.retryable
    assert "connect" in raised.value.reason


# === against FakeNotion ========================================================================

TOKEN = FakeNotion.DEFAULT_TOKEN
VALUES = {
    "incident": "INC-42",
    "title": "Checkout is down",
    "severity": "P1",
    "commander": "@alice",
    "channel": "https://example.slack.com/archives/C1",
    "declared_at": "2025-01-02 03:04 UTC",
}
MARK = "a1" * 16
FIELDS = PostmortemFields(
    label="INC-42",
    title="Checkout is down",
    severity="P1",
    status="mitigated",
    declared_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    channel_url="https://example.slack.com/archives/C1",
    mark=MARK,
)


class Clock:
    """A settable clock for FakeNotion, whose created_time has minute precision."""

    def __init__(self) -> None:
        self.now = 1_735_787_045.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 120) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeNotion]:
    with FakeNotion(clock=clock) as server:
        yield server


@pytest.fixture
def database(fake: FakeNotion) -> tuple[str, str]:
    return fake.add_database()


def make_gateway(fake: FakeNotion, database_id: str, timeout_s: float = 5.0) -> NotionGateway:
    return NotionGateway(
        token=TOKEN, base_url=fake.base_url, database_id=database_id, timeout_s=timeout_s
    )


@pytest.fixture
def gateway(fake: FakeNotion, database: tuple[str, str]) -> Iterator[NotionGateway]:
    opened = make_gateway(fake, database[0])
    yield opened
    opened.close()


def tree_outline(tree: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(type, text, children outline) for a FakeNotion children_tree."""
    return [
        (block["type"], FakeNotion.plain_text(block), tree_outline(block.get("children", [])))
        for block in tree
    ]


def blocks_outline(blocks: list[nb.Block]) -> list[tuple[str, str, Any]]:
    """The same outline for the request-shaped blocks we sent."""
    return [
        (block["type"], nb.plain_text(block), blocks_outline(nb.children_of(block)))
        for block in blocks
    ]


# --- schema ------------------------------------------------------------------------------------


def test_schema_resolves_the_data_source_once(
    fake: FakeNotion, gateway: NotionGateway, database: tuple[str, str]
) -> None:
    schema = gateway.schema()
    assert schema.database_id == database[0]
    assert schema.data_source_id.replace("-", "") == database[1].replace("-", "")
    assert (schema.title, schema.incident, schema.severity, schema.status) == (
        "Name",
        "Incident",
        "Severity",
        "Status",
    )
    assert (schema.declared, schema.channel) == ("Declared", "Channel")
    assert gateway.schema() is schema
    assert fake.count("databases.retrieve") == 1
    assert fake.count("data_sources.retrieve") == 1


def test_schema_is_resolved_once_under_concurrency(
    fake: FakeNotion, database: tuple[str, str]
) -> None:
    fake.set_latency(0.2, "databases.retrieve")
    gateway = make_gateway(fake, database[0])
    barrier = threading.Barrier(8)
    results: list[PostmortemSchema] = []

    def resolve() -> None:
        barrier.wait()
        results.append(gateway.schema())

    threads = [threading.Thread(target=resolve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    gateway.close()
    assert len(results) == 8 and len({id(result) for result in results}) == 1
    assert fake.count("databases.retrieve") == 1


def test_custom_named_title_property(fake: FakeNotion) -> None:
    database_id, _ = fake.add_database(
        properties={"Postmortem": {"title": {}}, "Incident": {"rich_text": {}}}
    )
    gateway = make_gateway(fake, database_id)
    schema = gateway.schema()
    assert schema.title == "Postmortem"
    assert schema.severity is None and schema.status is None
    page = gateway.create_postmortem(FIELDS, [])
    gateway.close()
    stored = fake.page(page.id)
    assert FakeNotion.property_text(stored, "Postmortem") == "INC-42: Checkout is down"
    assert FakeNotion.property_text(stored, "Incident") == "INC-42"
    assert set(stored["properties"]) == {"Postmortem", "Incident"}


def test_missing_incident_property_stops_before_any_write(fake: FakeNotion) -> None:
    database_id, _ = fake.add_database(properties={"Name": {"title": {}}})
    gateway = make_gateway(fake, database_id)
    with pytest.raises(NotionSchemaError, match='"Incident"'):
        gateway.schema()
    with pytest.raises(NotionSchemaError):
        gateway.create_postmortem(FIELDS, [])
    gateway.close()
    assert fake.write_count() == 0


def test_database_not_shared_says_so(fake: FakeNotion) -> None:
    gateway = make_gateway(fake, "0" * 32)
    with pytest.raises(NotionError) as raised:
        gateway.schema()
    gateway.close()
    assert raised.value.status == 404
    assert "isn't shared with the integration" in raised.value.reason


def test_revoked_token_is_reported_as_such(fake: FakeNotion, gateway: NotionGateway) -> None:
    fake.revoke_token(TOKEN)
    with pytest.raises(NotionError) as raised:
        gateway.schema()
    assert raised.value.status == 401
    assert raised.value.code == "unauthorized"
    assert "token" in raised.value.reason
    assert not raised.value.retryable


def test_a_500_on_a_read_is_sent_again(fake: FakeNotion, gateway: NotionGateway) -> None:
    fake.inject("databases.retrieve", status=500, times=1)
    gateway.schema()
    assert fake.count("databases.retrieve") == 2


def test_a_503_on_an_update_is_sent_again_but_an_append_never_is(
    fake: FakeNotion, gateway: NotionGateway
) -> None:
    page = gateway.create_postmortem(FIELDS, paragraphs(1))
    (block,) = [b["id"] for b in fake.children_tree(page.id)]
    fake.inject("blocks.update", status=503, times=2)
    gateway.update_block(block, {"paragraph": {"rich_text": [{"text": {"content": "new"}}]}})
    assert [c.status for c in fake.calls_to("blocks.update")] == [503, 503, 200]
    fake.inject("blocks.children.append", status=503, times=1)
    with pytest.raises(NotionError):
        gateway.append_blocks(page.id, paragraphs(1))  # it may have landed: the caller decides
    assert fake.count("blocks.children.append") == 1


# --- create ------------------------------------------------------------------------------------


def test_create_writes_properties_and_the_template_in_one_request(
    fake: FakeNotion, gateway: NotionGateway, database: tuple[str, str]
) -> None:
    blocks = render_template(load_template(None), VALUES)
    gateway.schema()
    fake.reset_calls()

    page = gateway.create_postmortem(FIELDS, blocks)

    assert fake.count("pages.create") == 1
    assert fake.write_count() == 1, "no appends for a template that fits the create call"
    stored = fake.page(page.id)
    assert page.url == stored["url"]
    props = {name: FakeNotion.property_text(stored, name) for name in stored["properties"]}
    assert props["Name"] == "INC-42: Checkout is down"
    assert props["Incident"] == "INC-42"
    assert props["Severity"] == "P1"
    assert props["Status"] == "Mitigated"
    assert props["Declared"] is not None and props["Declared"].startswith("2025-01-02T03:04:05")
    assert props["Channel"] == "https://example.slack.com/archives/C1"
    sent = fake.calls_to("pages.create")[0].body
    assert sent["parent"]["type"] == "data_source_id"
    tree = fake.children_tree(page.id)
    assert tree_outline(tree) == blocks_outline(blocks)
    assert is_transcript_heading(tree[-1])
    assert [p["id"] for p in fake.pages(database[1])] == [stored["id"]]


def test_a_250_block_template_is_created_then_appended_in_order(
    fake: FakeNotion, gateway: NotionGateway
) -> None:
    markdown = "\n\n".join(f"paragraph {i}" for i in range(250))
    blocks = render_template(markdown, VALUES)  # 250 + the transcript heading
    page = gateway.create_postmortem(FIELDS, blocks)

    create = fake.calls_to("pages.create")
    assert len(create) == 1 and len(create[0].body["children"]) == 100
    appends = fake.calls_to("blocks.children.append")
    assert [len(call.body["children"]) for call in appends] == [100, 51]
    assert tree_outline(fake.children_tree(page.id)) == blocks_outline(blocks)


def test_nesting_deeper_than_one_request_allows_is_written_whole(
    fake: FakeNotion, gateway: NotionGateway
) -> None:
    blocks = [*paragraphs(2), nested(5), nb.toggle([nb.text("t")], children=paragraphs(130))]
    page = gateway.create_postmortem(FIELDS, blocks)
    assert tree_outline(fake.children_tree(page.id)) == blocks_outline(blocks)


def test_a_short_429_on_create_is_waited_out_and_makes_one_page(
    fake: FakeNotion, gateway: NotionGateway, database: tuple[str, str]
) -> None:
    gateway.schema()
    fake.inject("pages.create", status=429, retry_after=0, times=1)
    page = gateway.create_postmortem(FIELDS, paragraphs(3))
    assert [call.status for call in fake.calls_to("pages.create")] == [429, 200]
    assert [p["id"] for p in fake.pages(database[1])] == [fake.page(page.id)["id"]]


def test_a_create_honours_a_short_retry_after(
    fake: FakeNotion, gateway: NotionGateway, database: tuple[str, str]
) -> None:
    gateway.schema()
    fake.inject("pages.create", status=429, retry_after=1, times=1)
    started = time.monotonic()
    gateway.create_postmortem(FIELDS, [])
    assert time.monotonic() - started >= 0.9
    assert fake.count("pages.create") == 2
    assert len(fake.pages(database[1])) == 1


@pytest.mark.parametrize("status", [502, 500, 503])
def test_a_server_error_on_create_is_not_retried(
    fake: FakeNotion, gateway: NotionGateway, database: tuple[str, str], status: int
) -> None:
    gateway.schema()
    fake.inject("pages.create", status=status, retry_after=0, times=1)
    with pytest.raises(NotionError) as raised:
        gateway.create_postmortem(FIELDS, paragraphs(3))
    assert raised.value.reason == f"Notion returned {status}"
    assert raised.value.status == status
    assert raised.value.retryable
    assert fake.count("pages.create") == 1
    assert fake.pages(database[1]) == []


def test_an_unanswered_create_times_out_and_the_page_can_be_adopted(
    fake: FakeNotion, gateway: NotionGateway, database: tuple[str, str]
) -> None:
    impatient = make_gateway(fake, database[0], timeout_s=1.0)
    impatient.schema()
    fake.inject("pages.create", drop_response_after_handling=True)
    with pytest.raises(NotionTimeout) as raised:
        impatient.create_postmortem(FIELDS, paragraphs(3))
    impatient.close()
    assert raised.value.retryable
    assert fake.count("pages.create") == 1
    stored = fake.pages(database[1])
    assert len(stored) == 1, "Notion applied the create although we never heard back"

    adopted = gateway.find_postmortem("INC-42", {MARK})  # what the next attempt does
    assert adopted is not None and adopted.id == stored[0]["id"]
    assert adopted.url == stored[0]["url"]


def test_a_reset_connection_on_create_is_ambiguous_and_nothing_is_adopted(
    fake: FakeNotion, gateway: NotionGateway, database: tuple[str, str]
) -> None:
    gateway.schema()
    fake.inject("pages.create", reset=True)
    with pytest.raises(NotionTimeout):
        gateway.create_postmortem(FIELDS, paragraphs(3))
    assert fake.count("pages.create") == 1
    assert fake.pages(database[1]) == []
    assert gateway.find_postmortem("INC-42", {MARK}) is None


def test_a_failed_append_after_create_carries_the_page_and_can_be_resumed(
    fake: FakeNotion, gateway: NotionGateway
) -> None:
    blocks = render_template("\n\n".join(f"p{i}" for i in range(160)), VALUES)
    fake.inject("blocks.children.append", status=500, times=1)
    with pytest.raises(NotionPartialWrite) as raised:
        gateway.create_postmortem(FIELDS, blocks)
    page = raised.value.page
    assert len(fake.children_tree(page.id)) == 100

    assert gateway.resume_template(page.id, blocks) == 61
    assert tree_outline(fake.children_tree(page.id)) == blocks_outline(blocks)
    writes = fake.write_count()
    assert gateway.resume_template(page.id, blocks) == 0
    assert fake.write_count() == writes


def test_resume_leaves_an_edited_page_alone(fake: FakeNotion, gateway: NotionGateway) -> None:
    page = gateway.create_postmortem(FIELDS, [nb.divider(), *paragraphs(2)])
    template = [*paragraphs(2), nb.divider(), *paragraphs(3)]
    assert gateway.resume_template(page.id, template) == 0
    assert len(fake.children_tree(page.id)) == 3


# --- find, retrieve, update ---------------------------------------------------------------------


def raw_client(fake: FakeNotion) -> Client:
    return Client(auth=TOKEN, base_url=fake.base_url, logger=logging.getLogger("raw"))


def test_find_postmortem_by_label_and_mark(
    fake: FakeNotion, gateway: NotionGateway, clock: Clock
) -> None:
    other = gateway.create_postmortem(
        PostmortemFields(label="INC-420", title="other", mark="b2" * 16), []
    )
    page = gateway.create_postmortem(FIELDS, [])
    assert gateway.find_postmortem("INC-42", {MARK, "c3" * 16}) == page
    assert gateway.find_postmortem("INC-420", {"b2" * 16}) == other
    assert gateway.find_postmortem("INC-4", {MARK}) is None


def test_a_page_with_our_label_but_not_our_mark_is_never_adopted(
    fake: FakeNotion, gateway: NotionGateway, clock: Clock
) -> None:
    """Last March's INC-42 (a reset store, another deployment on the same database)."""
    old = gateway.create_postmortem(dataclasses.replace(FIELDS, mark="0d" * 16), [])
    human = gateway.create_postmortem(dataclasses.replace(FIELDS, mark=None), [])
    assert gateway.find_postmortem("INC-42", {MARK}) is None
    stored = fake.page(old.id)["properties"]["Incident"]["rich_text"][0]
    assert stored["plain_text"] == "INC-42"
    assert stored["href"] == mark_url("0d" * 16)
    # An attempt from before marks existed: only an unmarked page made after it.
    started = datetime.fromisoformat(fake.page(human.id)["created_time"].replace("Z", "+00:00"))
    assert gateway.find_postmortem("INC-42", set(), unmarked_since=started) == human
    later = started + timedelta(minutes=5)
    assert gateway.find_postmortem("INC-42", set(), unmarked_since=later) is None


def test_find_postmortem_prefers_the_oldest_and_ignores_trashed(
    fake: FakeNotion, gateway: NotionGateway, clock: Clock
) -> None:
    first = gateway.create_postmortem(FIELDS, [])
    clock.advance()
    second = gateway.create_postmortem(FIELDS, [])
    assert gateway.find_postmortem("INC-42", {MARK}) == first

    raw_client(fake).pages.update(page_id=first.id, in_trash=True)
    assert gateway.find_postmortem("INC-42", {MARK}) == second
    raw_client(fake).pages.update(page_id=second.id, in_trash=True)
    assert gateway.find_postmortem("INC-42", {MARK}) is None


def test_an_archived_page_is_neither_adopted_nor_live(
    fake: FakeNotion, gateway: NotionGateway
) -> None:
    """Notion's `is_archived` (a person put the page away, apart from the trash)."""
    page = gateway.create_postmortem(FIELDS, [])
    fake.archive_page(page.id)
    assert fake.page(page.id)["is_archived"] is True
    assert fake.page(page.id)["in_trash"] is False
    assert gateway.find_postmortem("INC-42", {MARK}) is None
    assert gateway.retrieve_page(page.id) is None


def test_find_follows_pagination(fake: FakeNotion, gateway: NotionGateway, clock: Clock) -> None:
    schema = gateway.schema()
    for _ in range(105):
        fake.add_page(
            data_source_id=schema.data_source_id,
            properties={
                "Name": {"title": [{"type": "text", "text": {"content": "dup"}}]},
                "Incident": {
                    "rich_text": [
                        {
                            "type": "text",
                            "text": {"content": "INC-9", "link": {"url": mark_url(MARK)}},
                        }
                    ]
                },
            },
        )
        clock.advance()
    found = gateway.find_postmortem("INC-9", {MARK})
    assert found is not None
    assert found.id == fake.pages(schema.data_source_id)[0]["id"]
    assert fake.count("data_sources.query") == 2


def test_retrieve_page(fake: FakeNotion, gateway: NotionGateway) -> None:
    page = gateway.create_postmortem(FIELDS, [])
    assert gateway.retrieve_page(page.id) == page
    assert gateway.retrieve_page("1" * 32) is None
    raw_client(fake).pages.update(page_id=page.id, in_trash=True)
    assert gateway.retrieve_page(page.id) is None


def test_update_properties(fake: FakeNotion, gateway: NotionGateway) -> None:
    page = gateway.create_postmortem(FIELDS, [])
    changed = PostmortemFields(
        label="INC-42", title="Payments too", severity="P0", status="resolved"
    )
    gateway.update_properties(page.id, changed)
    stored = fake.page(page.id)
    assert FakeNotion.property_text(stored, "Name") == "INC-42: Payments too"
    assert FakeNotion.property_text(stored, "Severity") == "P0"
    assert FakeNotion.property_text(stored, "Status") == "Resolved"
    assert FakeNotion.property_text(stored, "Channel") == FIELDS.channel_url
    assert stored["properties"]["Incident"]["rich_text"][0]["href"] == mark_url(MARK), (
        "an update leaves the label and its mark alone"
    )


# --- blocks -------------------------------------------------------------------------------------


def test_append_after_a_block_keeps_order_and_returns_top_level_ids(
    fake: FakeNotion, gateway: NotionGateway
) -> None:
    page = gateway.create_postmortem(FIELDS, render_template(load_template(None), VALUES))
    tree = fake.children_tree(page.id)
    timeline = next(b for b in tree if FakeNotion.plain_text(b) == "Timeline")
    events = [nb.bulleted([nb.text(f"10:0{i} event")], children=paragraphs(1)) for i in range(3)]
    events += paragraphs(120, "e")  # more than one request after the anchor

    ids = gateway.append_blocks(page.id, events, after=timeline["id"])

    tree = fake.children_tree(page.id)
    start = next(i for i, b in enumerate(tree) if b["id"] == timeline["id"]) + 1
    inserted = tree[start : start + len(events)]
    assert [b["id"] for b in inserted] == ids
    assert tree_outline(inserted) == blocks_outline(events)


def test_append_under_the_transcript_heading(fake: FakeNotion, gateway: NotionGateway) -> None:
    page = gateway.create_postmortem(FIELDS, render_template(load_template(None), VALUES))
    heading = next(b for b in gateway.list_children(page.id) if is_transcript_heading(b))
    replies = paragraphs(2, "reply")
    messages = [nb.paragraph([nb.text("10:00 UTC — Alice: hi")], children=replies)]
    ids = gateway.append_blocks(heading["id"], messages)
    assert len(ids) == 1
    children = fake.children_tree(heading["id"])
    assert tree_outline(children) == blocks_outline(messages)


def test_list_children_paginates(fake: FakeNotion, gateway: NotionGateway) -> None:
    page = gateway.create_postmortem(FIELDS, paragraphs(250))
    fake.reset_calls()
    listed = list(gateway.list_children(page.id))
    assert texts(listed) == [f"p{i}" for i in range(250)]
    assert fake.count("blocks.children.list") == 3


def test_update_block(fake: FakeNotion, gateway: NotionGateway) -> None:
    page = gateway.create_postmortem(FIELDS, paragraphs(1))
    block_id = next(iter(gateway.list_children(page.id)))["id"]
    gateway.update_block(block_id, {"paragraph": {"rich_text": [nb.text("edited")]}})
    assert FakeNotion.plain_text(fake.block(block_id)) == "edited"
    with pytest.raises(NotionError) as raised:
        gateway.update_block("2" * 32, {"paragraph": {"rich_text": []}})
    assert raised.value.status == 404


def test_the_token_is_never_logged(
    fake: FakeNotion, gateway: NotionGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.create_postmortem(FIELDS, paragraphs(120))
    fake.inject("pages.create", status=502)
    with pytest.raises(NotionError):
        gateway.create_postmortem(FIELDS, [])
    assert caplog.records, "the client logs through our logger"
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


def _with(**changed: dict[str, Any]) -> dict[str, Any]:
    from bolt_app.devkit.fake_notion.fake import default_postmortem_schema

    return {**default_postmortem_schema(), **changed}


def test_status_typed_status_and_severity_are_written_as_status(fake: FakeNotion) -> None:
    """Notion's own `status` type, common in real databases, takes the same names."""
    names = ["Active", "Mitigated", "Resolved", "Postmortem", "Done", "Canceled"]
    database_id, _ = fake.add_database(
        properties=_with(
            Status={"status": {"options": [{"name": n} for n in names]}},
            Severity={"status": {"options": [{"name": f"P{i}"} for i in range(5)]}},
        )
    )
    gateway = make_gateway(fake, database_id)
    try:
        schema = gateway.schema()
        assert (schema.status_type, schema.severity_type, schema.warnings) == (
            "status",
            "status",
            (),
        )
        page = gateway.create_postmortem(FIELDS, [])
        props = fake.page(page.id)["properties"]
        assert props["Status"]["status"]["name"] == "Mitigated"
        assert props["Severity"]["status"]["name"] == "P1"
        gateway.update_properties(
            page.id, PostmortemFields(label="INC-42", title="x", status="resolved", severity="P0")
        )
        props = fake.page(page.id)["properties"]
        assert (props["Status"]["status"]["name"], props["Severity"]["status"]["name"]) == (
            "Resolved",
            "P0",
        )
    finally:
        gateway.close()


def test_a_property_the_bot_cannot_write_is_said_with_its_fix(fake: FakeNotion) -> None:
    database_id, _ = fake.add_database(
        properties=_with(Status={"status": {}}, Severity={"checkbox": {}})
    )
    gateway = make_gateway(fake, database_id)
    try:
        schema = gateway.schema()
    finally:
        gateway.close()
    assert schema.status is not None and schema.severity is None
    assert schema.warnings == (
        '"Severity" is a checkbox property, which Firebreak can\'t write: change it to '
        "select or status (Firebreak leaves it empty until then)",
        '"Status" is a Status property without the options Active, Mitigated, Resolved, '
        "Postmortem, Canceled: add them in Notion (the API can't create status "
        "options), or change it to a Select",
    )
