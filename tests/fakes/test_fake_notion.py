"""FakeNotion, driven by the real notion-client, behaves like Notion's 2025-09-03 API.

These tests pin the behaviour the app relies on: page/data-source shapes, the limits
Notion enforces (and the error it answers with), and the failures we inject to test
retries and the exactly-once protocol. No test sleeps: waits use deadlines.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from notion_client import APIResponseError, Client
from notion_client.errors import RequestTimeoutError, UnknownHTTPResponseError

from bolt_app.devkit.fake_notion.fake import FakeNotion

TOKEN = FakeNotion.DEFAULT_TOKEN
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LOGGER = logging.getLogger("tests.fake_notion")


# --------------------------------------------------------------------------- builders


def text(content: str, url: str | None = None, **annotations: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "text", "text": {"content": content}}
    if url:
        item["text"]["link"] = {"url": url}
    if annotations:
        item["annotations"] = annotations
    return item


def para(content: str, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"rich_text": [text(content)]}
    if children is not None:
        payload["children"] = children
    return {"object": "block", "type": "paragraph", "paragraph": payload}


def heading(content: str, *, toggleable: bool = False) -> dict[str, Any]:
    return {
        "type": "heading_2",
        "heading_2": {"rich_text": [text(content)], "is_toggleable": toggleable},
    }


def postmortem_properties(incident: str, title: str = "Checkout is down") -> dict[str, Any]:
    return {
        "Name": {"title": [text(f"{incident}: {title}")]},
        "Incident": {"rich_text": [text(incident)]},
        "Severity": {"select": {"name": "P1"}},
        "Status": {"select": {"name": "Active"}},
        "Declared": {"date": {"start": "2025-06-01T10:00:00.000Z"}},
        "Channel": {"url": "https://example.slack.com/archives/C0123"},
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def fake() -> Iterator[FakeNotion]:
    with FakeNotion() as server:
        yield server


@pytest.fixture
def client(fake: FakeNotion) -> Iterator[Client]:
    notion = Client(auth=TOKEN, base_url=fake.base_url, timeout_ms=5_000, logger=LOGGER)
    yield notion
    notion.close()


@pytest.fixture
def data_source_id(fake: FakeNotion) -> str:
    return fake.add_database()[1]


def create_postmortem(
    client: Client, data_source_id: str, incident: str = "INC-42", **kw: Any
) -> Any:
    return client.pages.create(
        parent={"type": "data_source_id", "data_source_id": data_source_id},
        properties=postmortem_properties(incident),
        **kw,
    )


def validation_error(call: Any) -> APIResponseError:
    with pytest.raises(APIResponseError) as caught:
        call()
    assert caught.value.code == "validation_error"
    assert caught.value.status == 400
    return caught.value


def raw_request(fake: FakeNotion, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Notion-Version": "2025-09-03"}
    headers.update(kw.pop("headers", {}))
    return httpx.request(method, f"{fake.base_url}{path}", headers=headers, timeout=5, **kw)


# --------------------------------------------------------------------------- shapes


def test_create_page_with_properties_and_children_under_a_data_source(
    fake: FakeNotion, client: Client, data_source_id: str
) -> None:
    page = create_postmortem(
        client,
        data_source_id,
        children=[heading("Summary"), para("Customers could not pay.", [para("nested")])],
    )

    assert UUID.match(page["id"])
    assert page["object"] == "page"
    assert (
        page["url"]
        == f"https://app.notion.com/p/INC-42-Checkout-is-down-{page['id'].replace('-', '')}"
    )
    assert page["parent"]["type"] == "data_source_id"
    assert page["parent"]["data_source_id"] == data_source_id
    assert page["archived"] is page["in_trash"] is False
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$", page["created_time"])
    props = page["properties"]
    assert props["Incident"]["rich_text"][0]["plain_text"] == "INC-42"
    assert props["Severity"]["select"]["name"] == "P1"
    assert props["Declared"]["date"] == {
        "start": "2025-06-01T10:00:00.000Z",
        "end": None,
        "time_zone": None,
    }
    assert props["Channel"] == {
        "id": props["Channel"]["id"],
        "type": "url",
        "url": "https://example.slack.com/archives/C0123",
    }
    tree = fake.children_tree(page["id"])
    assert [(b["type"], fake.plain_text(b)) for b in tree] == [
        ("heading_2", "Summary"),
        ("paragraph", "Customers could not pay."),
    ]
    assert tree[1]["has_children"] is True
    assert fake.plain_text(tree[1]["children"][0]) == "nested"
    retrieved = client.pages.retrieve(page["id"])
    assert UUID.match(retrieved.pop("request_id"))
    assert retrieved == fake.page(page["id"])


def test_rich_text_responses_fill_plain_text_href_and_annotations(
    fake: FakeNotion, client: Client
) -> None:
    page_id = fake.add_page("Scratch")
    result = client.blocks.children.append(
        page_id,
        children=[{"paragraph": {"rich_text": [text("docs", "https://x.test/a", bold=True)]}}],
    )

    item = result["results"][0]["paragraph"]["rich_text"][0]
    assert item["plain_text"] == "docs"
    assert item["href"] == "https://x.test/a"
    flags = ("bold", "italic", "strikethrough", "underline", "code")
    assert item["annotations"] == {flag: flag == "bold" for flag in flags} | {"color": "default"}
    assert result["object"] == "list" and result["type"] == "block"


def test_retrieve_database_then_data_source_schema(fake: FakeNotion, client: Client) -> None:
    database_id, data_source_id = fake.add_database("Postmortems")

    database = client.databases.retrieve(database_id)
    assert database["object"] == "database"
    assert database["data_sources"] == [{"id": data_source_id, "name": "Postmortems"}]
    assert database["title"][0]["plain_text"] == "Postmortems"
    source = client.data_sources.retrieve(database["data_sources"][0]["id"])
    assert source["object"] == "data_source"
    assert source["parent"] == {"type": "database_id", "database_id": database_id}
    schema = source["properties"]
    assert {name: prop["type"] for name, prop in schema.items()} == {
        "Name": "title", "Incident": "rich_text", "Severity": "select",
        "Status": "select", "Declared": "date", "Channel": "url",
    }  # fmt: skip
    assert schema["Name"]["id"] == "title"
    assert [o["name"] for o in schema["Severity"]["select"]["options"]] == [
        "P0",
        "P1",
        "P2",
        "P3",
        "P4",
    ]
    assert [o["name"] for o in schema["Status"]["select"]["options"]][-1] == "Canceled"


def test_databases_create_under_a_page_makes_one_data_source(
    fake: FakeNotion, client: Client
) -> None:
    parent = fake.add_page("Incidents")
    database = client.databases.create(
        parent={"type": "page_id", "page_id": parent},
        title=[text("Postmortems")],
        initial_data_source={"properties": {"Name": {"title": {}}, "Incident": {"rich_text": {}}}},
    )

    assert database["parent"] == {"type": "page_id", "page_id": parent}
    [source] = database["data_sources"]
    assert set(client.data_sources.retrieve(source["id"])["properties"]) == {"Name", "Incident"}
    assert fake.children_tree(parent)[0]["type"] == "child_database"


# --------------------------------------------------------------------------- queries


def test_query_by_incident_rich_text_equals(client: Client, data_source_id: str) -> None:
    wanted = create_postmortem(client, data_source_id, "INC-42")
    create_postmortem(client, data_source_id, "INC-420")

    result = client.data_sources.query(
        data_source_id, filter={"property": "Incident", "rich_text": {"equals": "INC-42"}}
    )

    assert [page["id"] for page in result["results"]] == [wanted["id"]]
    assert result["has_more"] is False and result["next_cursor"] is None
    assert result["type"] == "page_or_data_source"


def test_query_contains_title_and_compound_filters(client: Client, data_source_id: str) -> None:
    first = create_postmortem(client, data_source_id, "INC-1")
    second = create_postmortem(client, data_source_id, "INC-2")

    def ids(filter_: dict[str, Any]) -> list[str]:
        return [
            p["id"] for p in client.data_sources.query(data_source_id, filter=filter_)["results"]
        ]

    assert ids({"property": "Incident", "rich_text": {"contains": "inc-"}}) == [
        first["id"],
        second["id"],
    ]
    assert ids({"property": "Name", "title": {"starts_with": "INC-2"}}) == [second["id"]]
    either = {
        "or": [
            {"property": "Incident", "rich_text": {"equals": "INC-1"}},
            {"property": "Incident", "rich_text": {"equals": "INC-2"}},
        ]
    }
    assert len(ids(either)) == 2
    both = {
        "and": [
            {"property": "Severity", "select": {"equals": "P1"}},
            {"property": "Incident", "rich_text": {"equals": "INC-2"}},
        ]
    }
    assert ids(both) == [second["id"]]


def test_query_rejects_unknown_property_and_mismatched_filter(
    client: Client, data_source_id: str
) -> None:
    error = validation_error(
        lambda: client.data_sources.query(
            data_source_id, filter={"property": "Nope", "rich_text": {"equals": "x"}}
        )
    )
    assert "Could not find property with name or id: Nope" in str(error)
    validation_error(
        lambda: client.data_sources.query(
            data_source_id, filter={"property": "Incident", "select": {"equals": "x"}}
        )
    )
    validation_error(lambda: client.data_sources.query(data_source_id, page_size=101))


def test_query_paginates_with_cursors(client: Client, data_source_id: str) -> None:
    created = [create_postmortem(client, data_source_id, f"INC-{n}")["id"] for n in range(5)]

    first = client.data_sources.query(data_source_id, page_size=2)
    second = client.data_sources.query(
        data_source_id, page_size=2, start_cursor=first["next_cursor"]
    )
    third = client.data_sources.query(
        data_source_id, page_size=2, start_cursor=second["next_cursor"]
    )

    pages = first["results"] + second["results"] + third["results"]
    assert [p["id"] for p in pages] == created
    assert first["has_more"] and second["has_more"] and not third["has_more"]


def test_query_sorts_select_by_option_order(fake: FakeNotion, client: Client) -> None:
    _, source = fake.add_database(
        "Ranked",
        {
            "Name": {"title": {}},
            "Rank": {"select": {"options": [{"name": "Zulu"}, {"name": "Alpha"}]}},
        },
    )
    parent = {"type": "data_source_id", "data_source_id": source}
    for rank in ("Alpha", "Zulu"):
        client.pages.create(parent=parent, properties={"Rank": {"select": {"name": rank}}})

    result = client.data_sources.query(
        source, sorts=[{"property": "Rank", "direction": "ascending"}]
    )

    assert [FakeNotion.property_text(p, "Rank") for p in result["results"]] == ["Zulu", "Alpha"]
    validation_error(
        lambda: client.data_sources.query(
            source, sorts=[{"property": "Nope", "direction": "ascending"}]
        )
    )


def test_archived_page_is_excluded_from_queries_and_cannot_be_appended_to(
    fake: FakeNotion, client: Client, data_source_id: str
) -> None:
    page = create_postmortem(client, data_source_id)

    archived = client.pages.update(page["id"], archived=True)

    assert archived["archived"] is archived["in_trash"] is True
    assert client.data_sources.query(data_source_id)["results"] == []
    assert fake.pages(data_source_id) == []
    assert [p["id"] for p in fake.pages(data_source_id, include_archived=True)] == [page["id"]]
    error = validation_error(
        lambda: client.blocks.children.append(page["id"], children=[para("late")])
    )
    assert "archived" in str(error)


# --------------------------------------------------------------------------- properties


def test_property_validation_follows_notion(
    fake: FakeNotion, client: Client, data_source_id: str
) -> None:
    parent = {"type": "data_source_id", "data_source_id": data_source_id}

    unknown = validation_error(
        lambda: client.pages.create(parent=parent, properties={"Owner": {"rich_text": []}})
    )
    assert str(unknown) == "Owner is not a property that exists."
    mismatch = validation_error(
        lambda: client.pages.create(parent=parent, properties={"Incident": {"title": []}})
    )
    assert str(mismatch) == "Incident is expected to be rich_text."

    client.pages.create(parent=parent, properties={"Severity": {"select": {"name": "SEV-X"}}})
    options = fake.data_source(data_source_id)["properties"]["Severity"]["select"]["options"]
    assert options[-1]["name"] == "SEV-X"


def test_status_options_cannot_be_created_through_the_api(fake: FakeNotion, client: Client) -> None:
    _, source = fake.add_database("Tasks", {"Name": {"title": {}}, "State": {"status": {}}})
    parent = {"type": "data_source_id", "data_source_id": source}

    page = client.pages.create(parent=parent, properties={"State": {"status": {"name": "Done"}}})
    assert page["properties"]["State"]["status"]["name"] == "Done"
    validation_error(
        lambda: client.pages.create(
            parent=parent, properties={"State": {"status": {"name": "Blocked"}}}
        )
    )


# --------------------------------------------------------------------------- limits


def test_append_100_children_ok_and_101_rejected(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Transcript")

    appended = client.blocks.children.append(page_id, children=[para(f"m{i}") for i in range(100)])
    assert len(appended["results"]) == 100

    error = validation_error(
        lambda: client.blocks.children.append(page_id, children=[para("x")] * 101)
    )
    assert (
        str(error)
        == "body failed validation: body.children.length should be ≤ `100`, instead was `101`."
    )
    assert len(fake.children_tree(page_id)) == 100


def test_text_content_limit_is_2000_utf16_units(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Limits")

    client.blocks.children.append(page_id, children=[para("a" * 2000), para("😀" * 1000)])
    error = validation_error(
        lambda: client.blocks.children.append(page_id, children=[para("a" * 2001)])
    )
    assert str(error) == (
        "body failed validation: body.children[0].paragraph.rich_text[0].text.content.length "
        "should be ≤ `2000`, instead was `2001`."
    )
    validation_error(
        lambda: client.blocks.children.append(page_id, children=[para("😀" * 1000 + "a")])
    )
    long_link = [{"paragraph": {"rich_text": [text("x", "https://x.test/" + "a" * 2000)]}}]
    validation_error(lambda: client.blocks.children.append(page_id, children=long_link))


def test_more_than_100_rich_text_items_rejected(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Limits")
    block = {"paragraph": {"rich_text": [text("x")] * 101}}

    error = validation_error(lambda: client.blocks.children.append(page_id, children=[block]))
    assert "rich_text.length should be ≤ `100`, instead was `101`" in str(error)


def test_two_levels_of_nesting_ok_three_rejected(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Threads")

    client.blocks.children.append(page_id, children=[para("msg", [para("reply", [para("deep")])])])
    error = validation_error(
        lambda: client.blocks.children.append(
            page_id, children=[para("msg", [para("reply", [para("deep", [para("too deep")])])])]
        )
    )
    assert str(error).startswith(
        "body failed validation: body.children[0].paragraph.children[0].paragraph.children[0]"
        ".paragraph.children should be not present, instead was `[{"
    )


def test_at_most_1000_blocks_per_request(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Big")
    thread = [para(f"reply {i}") for i in range(9)]

    client.blocks.children.append(page_id, children=[para(f"m{i}", thread) for i in range(100)])
    one_too_many = [para("m", thread) for _ in range(99)] + [para("m", [para("r")] * 10)]
    validation_error(lambda: client.blocks.children.append(page_id, children=one_too_many))


def test_unknown_block_type_and_childless_types_rejected(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Types")

    validation_error(
        lambda: client.blocks.children.append(
            page_id, children=[{"type": "sparkle", "sparkle": {}}]
        )
    )
    divider = client.blocks.children.append(page_id, children=[{"divider": {}}])["results"][0]
    validation_error(lambda: client.blocks.children.append(divider["id"], children=[para("x")]))
    validation_error(
        lambda: client.blocks.children.append(
            page_id, children=[{"code": {"rich_text": [], "language": "klingon"}}]
        )
    )


def test_only_toggleable_headings_hold_children(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Headings")
    [plain] = client.blocks.children.append(page_id, children=[heading("Slack transcript")])[
        "results"
    ]

    validation_error(lambda: client.blocks.children.append(plain["id"], children=[para("x")]))
    updated = client.blocks.update(plain["id"], heading_2={"is_toggleable": True})
    assert updated["heading_2"]["is_toggleable"] is True
    assert fake.plain_text(updated) == "Slack transcript"
    client.blocks.children.append(plain["id"], children=[para("now allowed")])
    assert client.blocks.retrieve(plain["id"])["has_children"] is True


# --------------------------------------------------------------------------- children lists


def test_children_list_paginates(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Long")
    client.blocks.children.append(page_id, children=[para(f"m{i}") for i in range(100)])
    client.blocks.children.append(page_id, children=[para(f"m{i}") for i in range(100, 150)])

    first = client.blocks.children.list(page_id)
    second = client.blocks.children.list(page_id, start_cursor=first["next_cursor"], page_size=100)

    assert len(first["results"]) == 100 and first["has_more"] is True
    assert first["next_cursor"] == second["results"][0]["id"]
    assert [fake.plain_text(b) for b in second["results"]] == [f"m{i}" for i in range(100, 150)]
    assert second["has_more"] is False and second["next_cursor"] is None
    validation_error(lambda: client.blocks.children.list(page_id, page_size=101))


def test_append_after_a_block_and_delete_a_block(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Order")
    first, last = client.blocks.children.append(page_id, children=[para("first"), para("last")])[
        "results"
    ]

    client.blocks.children.append(
        page_id,
        children=[para("middle")],
        position={"type": "after_block", "after_block": {"id": first["id"]}},
    )
    deleted = client.blocks.delete(last["id"])

    assert deleted["in_trash"] is True
    assert [fake.plain_text(b) for b in fake.children_tree(page_id)] == ["first", "middle"]
    validation_error(
        lambda: client.blocks.update(last["id"], paragraph={"rich_text": [text("edit")]})
    )


# --------------------------------------------------------------------------- errors


def test_unknown_id_is_404_object_not_found(fake: FakeNotion, client: Client) -> None:
    missing = "0123456789abcdef0123456789abcdef"

    with pytest.raises(APIResponseError) as caught:
        client.pages.retrieve(missing)

    assert caught.value.code == "object_not_found" and caught.value.status == 404
    body = raw_request(fake, "GET", f"/v1/blocks/{missing}/children").json()
    assert set(body) == {"object", "status", "code", "message", "request_id"}
    assert body["object"] == "error" and body["status"] == 404
    assert body["message"] == (
        "Could not find block with ID: 01234567-89ab-cdef-0123-456789abcdef. "
        "Make sure the relevant pages and databases are shared with your integration."
    )


def test_bad_or_revoked_token_is_401(fake: FakeNotion) -> None:
    wrong = Client(auth="ntn_wrong", base_url=fake.base_url, logger=LOGGER)
    with pytest.raises(APIResponseError) as caught:
        wrong.users.me()
    assert caught.value.code == "unauthorized" and caught.value.status == 401

    fake.add_token("ntn_other")
    other = Client(auth="ntn_other", base_url=fake.base_url, logger=LOGGER)
    assert other.users.me()["type"] == "bot"
    fake.revoke_token("ntn_other")
    with pytest.raises(APIResponseError):
        other.users.me()


def test_request_errors_use_notion_codes(fake: FakeNotion) -> None:
    no_version = raw_request(fake, "GET", "/v1/users/me", headers={"Notion-Version": ""})
    assert (no_version.status_code, no_version.json()["code"]) == (400, "missing_version")
    bad_json = raw_request(
        fake, "POST", "/v1/pages", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    envelope = bad_json.json()
    assert UUID.match(envelope.pop("request_id"))
    assert envelope == {
        "object": "error",
        "status": 400,
        "code": "invalid_json",
        "message": "Error parsing JSON body.",
    }
    wrong_method = raw_request(fake, "PUT", "/v1/pages")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (400, "invalid_request_url")
    bad_id = raw_request(fake, "GET", "/v1/pages/not-an-id")
    assert bad_id.json()["code"] == "validation_error"


# --------------------------------------------------------------------------- faults


def test_429_is_retried_after_retry_after(
    fake: FakeNotion, client: Client, data_source_id: str
) -> None:
    fake.inject("pages.create", status=429, retry_after=0)

    create_postmortem(client, data_source_id)

    assert [call.status for call in fake.calls_to("pages.create")] == [429, 200]
    assert len(fake.pages(data_source_id)) == 1


def test_rate_limited_body_and_retry_after_header(fake: FakeNotion) -> None:
    fake.inject("*", status=429, retry_after=7)

    response = raw_request(fake, "GET", "/v1/users/me")

    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["code"] == "rate_limited"


def test_503_on_a_get_is_retried_but_not_on_a_post(
    fake: FakeNotion, client: Client, data_source_id: str
) -> None:
    fake.inject("data_sources.retrieve", status=503, retry_after=0)
    assert client.data_sources.retrieve(data_source_id)["object"] == "data_source"

    fake.inject("pages.create", status=500)
    with pytest.raises(APIResponseError) as caught:
        create_postmortem(client, data_source_id)
    assert caught.value.code == "internal_server_error"
    assert fake.count("pages.create") == 1 and fake.pages(data_source_id) == []


def test_non_json_502_raises_unknown_http_response_error(
    fake: FakeNotion, client: Client, data_source_id: str
) -> None:
    fake.inject("pages.create", status=502)

    with pytest.raises(UnknownHTTPResponseError) as caught:
        create_postmortem(client, data_source_id)

    assert caught.value.status == 502 and "<html>" in caught.value.body
    assert fake.pages(data_source_id) == []


def test_dropped_response_times_out_yet_the_page_exists(
    fake: FakeNotion, data_source_id: str
) -> None:
    impatient = Client(auth=TOKEN, base_url=fake.base_url, timeout_ms=300, logger=LOGGER)
    fake.inject("pages.create", drop_response_after_handling=True)

    with pytest.raises(RequestTimeoutError):
        create_postmortem(impatient, data_source_id)

    [page] = fake.wait_for(lambda: fake.pages(data_source_id))
    assert FakeNotion.property_text(page, "Incident") == "INC-42"
    call = fake.wait_for(
        lambda: next((c for c in fake.calls_to("pages.create") if c.dropped), None)
    )
    assert call.status == 200 and fake.count("pages.create") == 1
    found = impatient.data_sources.query(
        data_source_id, filter={"property": "Incident", "rich_text": {"equals": "INC-42"}}
    )
    assert [p["id"] for p in found["results"]] == [page["id"]]


def test_reset_connection_raises_a_transport_error(fake: FakeNotion, client: Client) -> None:
    fake.inject("users.me", reset=True)

    with pytest.raises(httpx.TransportError):
        client.users.me()

    assert fake.calls_to("users.me")[0].status == 0
    assert client.users.me()["object"] == "user"


def test_a_delayed_request_does_not_block_others(
    fake: FakeNotion, client: Client, data_source_id: str
) -> None:
    fake.inject("data_sources.retrieve", status=None, delay=60.0)
    outcome: list[object] = []

    def slow() -> None:
        try:
            outcome.append(client.data_sources.retrieve(data_source_id))
        except Exception as error:  # released by stop() below
            outcome.append(error)

    worker = threading.Thread(target=slow)
    worker.start()
    fake.wait_for(lambda: fake.count("data_sources.retrieve") == 1)

    other = Client(auth=TOKEN, base_url=fake.base_url, logger=LOGGER)
    assert other.users.me()["type"] == "bot"
    assert outcome == []

    fake.stop()
    worker.join(timeout=5)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)


def test_latency_is_added_to_every_call(fake: FakeNotion, client: Client) -> None:
    fake.set_latency(0.2)
    started = time.monotonic()
    client.users.me()
    assert time.monotonic() - started >= 0.2
    fake.set_latency(0)


def test_stop_is_fast_even_with_a_held_connection(data_source_id: str, fake: FakeNotion) -> None:
    patient = Client(auth=TOKEN, base_url=fake.base_url, timeout_ms=30_000, logger=LOGGER)
    fake.inject("pages.create", drop_response_after_handling=True)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            create_postmortem(patient, data_source_id)
        except BaseException as error:  # the connection is cut when the fake stops
            errors.append(error)

    worker = threading.Thread(target=create)
    worker.start()
    fake.wait_for(lambda: any(call.dropped for call in fake.calls_to("pages.create")))
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    worker.join(timeout=5)
    assert errors and len(fake.pages(data_source_id)) == 1


def test_restart_keeps_the_port_and_the_state(fake: FakeNotion, client: Client) -> None:
    page_id = fake.add_page("Survivor")
    url = fake.base_url

    fake.stop()
    with pytest.raises(httpx.TransportError):
        client.users.me()
    fake.start()

    assert fake.base_url == url
    assert client.pages.retrieve(page_id)["id"] == page_id


# --------------------------------------------------------------------------- inspection


def test_call_log_and_write_count(fake: FakeNotion, client: Client, data_source_id: str) -> None:
    page = create_postmortem(client, data_source_id)
    client.data_sources.query(data_source_id)
    client.blocks.children.list(page["id"])
    client.blocks.children.append(page["id"], children=[para("x")])

    assert fake.write_count() == 2
    [call] = fake.calls_to("blocks.children.append")
    assert call.method == "PATCH" and call.path == f"/v1/blocks/{page['id']}/children"
    assert call.body == {"children": [para("x")]} and call.status == 200
    fake.reset_calls()
    assert fake.calls == [] and fake.count("pages.create") == 0


def test_wait_for_returns_the_value_or_times_out(fake: FakeNotion) -> None:
    assert fake.wait_for(lambda: "ready", timeout=0.1) == "ready"
    with pytest.raises(TimeoutError):
        fake.wait_for(lambda: fake.count("pages.create"), timeout=0.1)


def test_seeded_postmortem_is_found_by_the_query_the_app_uses(
    fake: FakeNotion, client: Client
) -> None:
    _, source = fake.add_database()
    page_id = fake.add_page("INC-7: Old incident", data_source_id=source)
    client.pages.update(page_id, properties={"Incident": {"rich_text": [text("INC-7")]}})

    found = client.data_sources.query(
        source, filter={"property": "Incident", "rich_text": {"equals": "INC-7"}}
    )

    assert [p["id"] for p in found["results"]] == [page_id]
    assert fake.page(page_id)["url"].startswith("https://app.notion.com/p/INC-7-Old-incident-")


def test_an_append_placed_among_siblings_lists_them_after_the_new_blocks(
    fake: FakeNotion, client: Client
) -> None:
    """Notion's answer to an append with `after` or `position` holds the new blocks,
    then every sibling that now follows them; at the end, only the new blocks."""
    page_id = fake.add_page("Placed")
    first, second, third = (
        b["id"]
        for b in client.blocks.children.append(page_id, children=[para(t) for t in "abc"])[
            "results"
        ]
    )
    after = client.blocks.children.append(page_id, children=[para("x")], after=first)["results"]
    assert [b["id"] for b in after[1:]] == [second, third]
    start = client.blocks.children.append(
        page_id, children=[para("y"), para("z")], position={"type": "start"}
    )["results"]
    assert [b["id"] for b in start[2:]] == [first, after[0]["id"], second, third]
    end = client.blocks.children.append(page_id, children=[para("w")])["results"]
    assert len(end) == 1
