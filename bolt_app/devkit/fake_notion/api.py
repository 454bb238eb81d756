"""What each FakeNotion endpoint does, independent of HTTP.

`match_route` maps a method and path to a route name (the names used for fault injection
and the call log, e.g. "pages.create"), and `HANDLERS[route](store, request)` runs it.
Every handler holds the store lock for the whole request, validates the entire body
first, and only then writes, so a rejected request changes nothing.

Endpoints and their 2025-09-03 shapes were checked against developers.notion.com and the
notion-sdk-js generated types (`databases.ts`, `data-sources.ts`, `blocks.ts`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bolt_app.devkit.fake_notion.block_schema import (
    HEADINGS,
    SUPPORTED_BLOCKS,
    UNMODELLED_BLOCKS,
    BlockCount,
    parse_children,
    parse_icon,
    parse_rich_text,
    plain_text_of,
    update_content,
)
from bolt_app.devkit.fake_notion.common import (
    ARCHIVED_MESSAGE,
    JSON,
    NotionError,
    body_error,
    body_id,
    new_id,
    not_found,
    path_id,
    shown,
    undefined,
    validation_error,
)
from bolt_app.devkit.fake_notion.props import Schema, default_values, parse_schema, parse_values
from bolt_app.devkit.fake_notion.query import compile_filter, page_size, paginate, sort_pages
from bolt_app.devkit.fake_notion.workspace import (
    Database,
    DataSource,
    NotionStore,
    Page,
    spec_count,
)

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/v1/users/me", "users.me"),
    ("POST", "/v1/databases", "databases.create"),
    ("GET", "/v1/databases/{database_id}", "databases.retrieve"),
    ("GET", "/v1/data_sources/{data_source_id}", "data_sources.retrieve"),
    ("POST", "/v1/data_sources/{data_source_id}/query", "data_sources.query"),
    ("POST", "/v1/pages", "pages.create"),
    ("GET", "/v1/pages/{page_id}", "pages.retrieve"),
    ("PATCH", "/v1/pages/{page_id}", "pages.update"),
    ("GET", "/v1/blocks/{block_id}", "blocks.retrieve"),
    ("PATCH", "/v1/blocks/{block_id}", "blocks.update"),
    ("DELETE", "/v1/blocks/{block_id}", "blocks.delete"),
    ("GET", "/v1/blocks/{block_id}/children", "blocks.children.list"),
    ("PATCH", "/v1/blocks/{block_id}/children", "blocks.children.append"),
)
#: Routes that change state. `data_sources.query` is a POST but only reads.
WRITE_ROUTES = frozenset(
    {
        "databases.create",
        "pages.create",
        "pages.update",
        "blocks.update",
        "blocks.delete",
        "blocks.children.append",
    }
)
_TITLE_ONLY: Schema = {
    "title": {"id": "title", "name": "title", "type": "title", "description": None, "title": {}}
}
_PATTERNS = [
    (method, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$"), route)
    for method, pattern, route in ROUTES
]


@dataclass
class ApiRequest:
    """A parsed request: path parameters, JSON body (an object) and query string."""

    params: dict[str, str] = field(default_factory=dict)
    body: JSON = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


Handler = Callable[[NotionStore, ApiRequest], JSON]


def match_route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The route name and path parameters for a request, or Notion's invalid-URL error.

    A known path with the wrong method gets the same 400 `invalid_request_url` Notion
    documents for URLs it doesn't serve.
    """
    for route_method, pattern, route in _PATTERNS:
        found = pattern.match(path)
        if found and route_method == method:
            return route, found.groupdict()
    raise NotionError(400, "invalid_request_url", "Invalid request URL.")


def _list(results: list[JSON], next_cursor: str | None, kind: str) -> JSON:
    return {
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
        "type": kind,
        kind: {},
    }


def _trash_flag(body: JSON) -> bool | None:
    """`in_trash`, or its deprecated alias `archived`; None when neither is given."""
    for key in ("in_trash", "archived"):
        if key in body:
            if not isinstance(body[key], bool):
                raise body_error(
                    f"body.{key} should be a boolean, instead was `{shown(body[key])}`."
                )
            return bool(body[key])
    return None


# --------------------------------------------------------------------------- users, databases


def users_me(store: NotionStore, request: ApiRequest) -> JSON:
    return store.user_json()


def databases_create(store: NotionStore, request: ApiRequest) -> JSON:
    body = request.body
    with store.lock:
        parent = _database_parent(store, body.get("parent"))
        title = parse_rich_text(body.get("title", []), "body.title")
        initial = body.get("initial_data_source", {})
        if not isinstance(initial, dict):
            raise body_error(
                f"body.initial_data_source should be an object, instead was `{shown(initial)}`."
            )
        path = "body.initial_data_source"
        schema = parse_schema(initial.get("properties", {}), f"{path}.properties")
        ds_title = (
            parse_rich_text(initial["title"], f"{path}.title") if "title" in initial else title
        )
        db = Database(new_id(), title, parent, store.now(), is_inline=bool(body.get("is_inline")))
        ds = DataSource(new_id(), db.id, plain_text_of(ds_title), schema, db.created_time)
        db.data_source_ids.append(ds.id)
        store.databases[db.id] = db
        store.data_sources[ds.id] = ds
        if parent["type"] == "page_id":
            store.children.setdefault(parent["page_id"], []).append(db.id)
        return store.database_json(db)


def _database_parent(store: NotionStore, raw: Any) -> JSON:
    if not isinstance(raw, dict):
        raise undefined("body.parent")
    if raw.get("type") == "workspace" or raw.get("workspace") is True:
        return {"type": "workspace", "workspace": True}
    page_id = body_id(raw.get("page_id"), "body.parent.page_id")
    _writable_page(store, page_id)
    return {"type": "page_id", "page_id": page_id}


def _writable_page(store: NotionStore, page_id: str) -> Page:
    page = store.page(page_id)
    if store.archived_in_chain(page_id):
        raise validation_error(ARCHIVED_MESSAGE)
    return page


def databases_retrieve(store: NotionStore, request: ApiRequest) -> JSON:
    with store.lock:
        return store.database_json(
            store.database(path_id(request.params["database_id"], "database_id"))
        )


def data_sources_retrieve(store: NotionStore, request: ApiRequest) -> JSON:
    ds_id = path_id(request.params["data_source_id"], "data_source_id")
    with store.lock:
        return store.data_source_json(store.data_source(ds_id))


def data_sources_query(store: NotionStore, request: ApiRequest) -> JSON:
    """Pages of a data source matching `filter`, in `sorts` order; trashed pages excluded."""
    body = request.body
    ds_id = path_id(request.params["data_source_id"], "data_source_id")
    with store.lock:
        ds = store.data_source(ds_id)
        matches = compile_filter(ds.properties, body.get("filter"))
        size = page_size(body.get("page_size"), "body.page_size")
        include_trash = _trash_flag(body) is True
        pages = [
            store.page_json(page)
            for page in store.pages.values()
            if page.data_source_id == ds.id and (include_trash or not page.in_trash)
        ]
        ordered = sort_pages([p for p in pages if matches(p)], body.get("sorts"), ds.properties)
        chunk, cursor = paginate(
            ordered, lambda p: str(p["id"]), body.get("start_cursor"), size, "body.start_cursor"
        )
        return _list(chunk, cursor, "page_or_data_source")


# --------------------------------------------------------------------------- pages


def pages_create(store: NotionStore, request: ApiRequest) -> JSON:
    body = request.body
    for unmodelled in ("markdown", "content"):
        if unmodelled in body:
            raise body_error(
                f"body.{unmodelled} is accepted by Notion but not modelled by FakeNotion."
            )
    with store.lock:
        parent, ds = _page_parent(store, body.get("parent"))
        schema = copy.deepcopy(ds.properties) if ds else copy.deepcopy(_TITLE_ONLY)
        given = parse_values(schema, body.get("properties"), "body.properties")
        values = {name: given.get(name, empty) for name, empty in default_values(schema).items()}
        specs = _request_children(body) if body.get("children") is not None else []
        icon = parse_icon(body.get("icon"), "body.icon")
        cover = _cover(body.get("cover"))
        store.spend_blocks(1 + spec_count(specs))  # a page is a block too
        stamp = store.now()
        page = Page(
            new_id(), parent, ds.id if ds else None, values, stamp, stamp, icon=icon, cover=cover
        )
        store.pages[page.id] = page
        store.children[page.id] = []
        if ds:
            ds.properties = schema
        if parent["type"] == "page_id":
            store.children.setdefault(parent["page_id"], []).append(page.id)
        store.insert_blocks(page.id, specs, counted=True)
        return store.page_json(page)


def _request_children(body: JSON) -> list[Any]:
    count = BlockCount()
    return parse_children(body.get("children"), "body.children", 0, count)


def _page_parent(store: NotionStore, raw: Any) -> tuple[JSON, DataSource | None]:
    if not isinstance(raw, dict):
        raise undefined("body.parent")
    keys = ("data_source_id", "database_id", "page_id", "workspace")
    kind = raw.get("type") or next((k for k in keys if k in raw), None)
    if kind == "data_source_id":
        ds = store.data_source(body_id(raw.get("data_source_id"), "body.parent.data_source_id"))
        return _row_parent(ds), ds
    if kind == "database_id":
        db = store.database(body_id(raw.get("database_id"), "body.parent.database_id"))
        if len(db.data_source_ids) != 1:
            raise validation_error(
                "Databases with multiple data sources need a data_source_id parent."
            )
        ds = store.data_sources[db.data_source_ids[0]]
        return _row_parent(ds), ds
    if kind == "page_id":
        page_id = body_id(raw.get("page_id"), "body.parent.page_id")
        _writable_page(store, page_id)
        return {"type": "page_id", "page_id": page_id}, None
    if kind == "workspace":
        return {"type": "workspace", "workspace": True}, None
    raise body_error(
        "body.parent should be a data_source_id, database_id or page_id parent, "
        f"instead was `{shown(raw)}`."
    )


def _row_parent(ds: DataSource) -> JSON:
    return {"type": "data_source_id", "data_source_id": ds.id, "database_id": ds.database_id}


def _cover(raw: Any) -> JSON | None:
    if raw is None:
        return None
    external = raw.get("external") if isinstance(raw, dict) else None
    if not isinstance(external, dict) or not isinstance(external.get("url"), str):
        raise body_error(f"body.cover should be an external file, instead was `{shown(raw)}`.")
    return {"type": "external", "external": {"url": external["url"]}}


def pages_retrieve(store: NotionStore, request: ApiRequest) -> JSON:
    page_id = path_id(request.params["page_id"], "page_id")
    with store.lock:
        return store.page_json(store.page(page_id))


def pages_update(store: NotionStore, request: ApiRequest) -> JSON:
    """Update properties, icon/cover, erase content, or move to/from the trash."""
    body = request.body
    page_id = path_id(request.params["page_id"], "page_id")
    with store.lock:
        page = store.page(page_id)
        trash = _trash_flag(body)
        edits = [k for k in ("properties", "icon", "cover", "erase_content") if k in body]
        if edits and trash is not False and store.archived_in_chain(page_id):
            raise validation_error(ARCHIVED_MESSAGE)
        ds = store.data_sources.get(page.data_source_id or "")
        schema = copy.deepcopy(ds.properties) if ds else copy.deepcopy(_TITLE_ONLY)
        values = parse_values(schema, body.get("properties"), "body.properties")
        icon = parse_icon(body["icon"], "body.icon") if "icon" in body else page.icon
        cover = _cover(body["cover"]) if "cover" in body else page.cover
        page.properties.update(values)
        page.icon, page.cover = icon, cover
        if ds:
            ds.properties = schema
        if body.get("erase_content") is True:
            for child in store.children.get(page.id, []):
                _trash(store, child)
        if trash is not None:
            page.in_trash = trash
        store.touch(page.id)
        return store.page_json(page)


def _trash(store: NotionStore, object_id: str, flag: bool = True) -> None:
    obj = (
        store.pages.get(object_id) or store.blocks.get(object_id) or store.databases.get(object_id)
    )
    if obj is not None:
        obj.in_trash = flag


# --------------------------------------------------------------------------- blocks


def _known_block(store: NotionStore, raw_id: str) -> str:
    block_id = path_id(raw_id, "block_id")
    if (
        block_id not in store.blocks
        and block_id not in store.pages
        and block_id not in store.databases
    ):
        raise not_found("block", block_id)
    return block_id


def blocks_retrieve(store: NotionStore, request: ApiRequest) -> JSON:
    with store.lock:
        return store.block_json(_known_block(store, request.params["block_id"]))


def blocks_update(store: NotionStore, request: ApiRequest) -> JSON:
    """Edit a block's type payload (e.g. rich_text, is_toggleable, checked) or trash it."""
    body = request.body
    with store.lock:
        block_id = _known_block(store, request.params["block_id"])
        trash = _trash_flag(body)
        block = store.blocks.get(block_id)
        if block is None:
            if trash is not None:
                _trash(store, block_id, trash)
            return store.block_json(block_id)
        named = [k for k in body if k in SUPPORTED_BLOCKS | UNMODELLED_BLOCKS]
        for kind in named + ([body["type"]] if "type" in body else []):
            if kind != block.type:
                raise validation_error(
                    f"Block type {kind} does not match the block's type {block.type}."
                )
        if trash is not False and (named or trash is None) and store.archived_in_chain(block_id):
            raise validation_error(ARCHIVED_MESSAGE)
        if named:
            content = update_content(
                block.type, block.content, body[block.type], f"body.{block.type}"
            )
            if (
                block.type in HEADINGS
                and not content["is_toggleable"]
                and store.live_children(block_id)
            ):
                raise validation_error(
                    "A heading with children must stay toggleable; remove its children first."
                )
            block.content = content
        if trash is not None:
            block.in_trash = trash
        store.touch(block_id)
        return store.block_json(block_id)


def blocks_delete(store: NotionStore, request: ApiRequest) -> JSON:
    """Move a block (or a page, addressed as a block) to the trash."""
    with store.lock:
        block_id = _known_block(store, request.params["block_id"])
        if store.is_trashed(block_id):
            raise validation_error(ARCHIVED_MESSAGE)
        _trash(store, block_id)
        store.touch(block_id)
        return store.block_json(block_id)


def blocks_children_list(store: NotionStore, request: ApiRequest) -> JSON:
    with store.lock:
        target = store.container(path_id(request.params["block_id"], "block_id"))
        size = page_size(request.query.get("page_size"), "query.page_size")
        ids = store.live_children(target.id)
        chunk, cursor = paginate(
            ids, str, request.query.get("start_cursor"), size, "query.start_cursor"
        )
        return _list([store.block_json(child) for child in chunk], cursor, "block")


def blocks_children_append(store: NotionStore, request: ApiRequest) -> JSON:
    """Append blocks (with up to two levels of nested children) to a page or block."""
    body = request.body
    with store.lock:
        specs = parse_children(body.get("children"), "body.children", 0, BlockCount())
        sent = json.dumps(body.get("children"), ensure_ascii=False)
        for word in store.refused_words:
            if word in sent:
                raise validation_error(f"body.children contains content Notion refuses: {word}")
        target = store.container(path_id(request.params["block_id"], "block_id"))
        if store.archived_in_chain(target.id):
            raise validation_error(ARCHIVED_MESSAGE)
        if not store.accepts_children(target):
            kind = getattr(target, "type", "page")
            raise validation_error(f"Block type {kind} does not support children.")
        index = _insert_index(store, target.id, body)
        created = store.insert_blocks(target.id, specs, index)
        listed = list(created)
        if index is not None:
            # Notion lists, after the new blocks, every sibling that now follows them.
            siblings = store.live_children(target.id)
            listed += siblings[siblings.index(created[-1]) + 1 :] if created else []
        return _list([store.block_json(block_id) for block_id in listed], None, "block")


def _insert_index(store: NotionStore, container_id: str, body: JSON) -> int | None:
    """Where `position` (or the deprecated `after`) puts new blocks; None = the end."""
    position, after = body.get("position"), body.get("after")
    if after is not None:
        anchor = body_id(after, "body.after")
    elif position is None:
        return None
    elif not isinstance(position, dict) or position.get("type") not in (
        "start",
        "end",
        "after_block",
    ):
        raise body_error(
            "body.position.type should be `start`, `end` or `after_block`, "
            f"instead was `{shown(position)}`."
        )
    elif position["type"] != "after_block":
        return 0 if position["type"] == "start" else None
    else:
        anchor = body_id(
            (position.get("after_block") or {}).get("id"), "body.position.after_block.id"
        )
    siblings = store.children.get(container_id, [])
    if anchor not in siblings:
        raise validation_error(f"Block {anchor} is not a child of block {container_id}.")
    return siblings.index(anchor) + 1


HANDLERS: dict[str, Handler] = {
    "users.me": users_me,
    "databases.create": databases_create,
    "databases.retrieve": databases_retrieve,
    "data_sources.retrieve": data_sources_retrieve,
    "data_sources.query": data_sources_query,
    "pages.create": pages_create,
    "pages.retrieve": pages_retrieve,
    "pages.update": pages_update,
    "blocks.retrieve": blocks_retrieve,
    "blocks.update": blocks_update,
    "blocks.delete": blocks_delete,
    "blocks.children.list": blocks_children_list,
    "blocks.children.append": blocks_children_append,
}
