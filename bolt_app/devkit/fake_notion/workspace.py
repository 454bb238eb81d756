"""FakeNotion's state: databases, data sources, pages and blocks, and their JSON shapes.

One re-entrant lock guards everything; endpoint code (`notion_api`) takes it for the whole
request so that validation and the write it guards are atomic, as they are in Notion.

Pages and blocks share one id space and one `children` map, because in Notion a page *is*
a block: `GET /v1/blocks/{page_id}/children` lists a page's content, and a page created
under another page appears in its parent's children as a `child_page` block.

Response shapes follow the 2025-09-03 API (notion-sdk-js `api-endpoints` types): pages in
a data source carry `parent: {"type": "data_source_id", "data_source_id", "database_id"}`,
databases list their `data_sources`, and data sources carry the property schema.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from bolt_app.devkit.fake_notion.block_schema import BlockSpec, can_have_children, parse_rich_text
from bolt_app.devkit.fake_notion.common import (
    JSON,
    Clock,
    NotionError,
    compact_id,
    iso_minute,
    new_id,
    not_found,
    partial_user,
)
from bolt_app.devkit.fake_notion.props import Schema, title_text

_SLUG_JUNK = re.compile(r"[^A-Za-z0-9]+")


@dataclass
class Block:
    """A content block; `content` is the response-form payload under its `type` key."""

    id: str
    type: str
    content: JSON
    parent: JSON
    created_time: str
    last_edited_time: str
    in_trash: bool = False


@dataclass
class Page:
    """A page: a row of a data source, or a page under a page or the workspace."""

    id: str
    parent: JSON
    data_source_id: str | None
    properties: dict[str, JSON]
    created_time: str
    last_edited_time: str
    in_trash: bool = False
    #: Archived by a person (Notion's newer state beside the trash; `archived` in the
    #: response stays the deprecated alias of `in_trash`).
    is_archived: bool = False
    icon: JSON | None = None
    cover: JSON | None = None


@dataclass
class DataSource:
    """A table of pages under a database; owns the property schema."""

    id: str
    database_id: str
    name: str
    properties: Schema
    created_time: str


@dataclass
class Database:
    """A container of one or more data sources (since Notion-Version 2025-09-03)."""

    id: str
    title: list[JSON]
    parent: JSON
    created_time: str
    data_source_ids: list[str] = field(default_factory=list)
    in_trash: bool = False
    is_inline: bool = False


class NotionStore:
    """All objects of one fake workspace, plus the builders of their JSON responses."""

    def __init__(
        self, *, clock: Clock | None = None, workspace_name: str = "Fake Workspace"
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.bot_id = new_id()
        self.workspace_id = new_id()
        self.workspace_name = workspace_name
        self.databases: dict[str, Database] = {}
        self.data_sources: dict[str, DataSource] = {}
        self.pages: dict[str, Page] = {}
        self.blocks: dict[str, Block] = {}
        self.children: dict[str, list[str]] = {}
        #: A fault for tests: an append whose blocks contain one of these strings is
        #: refused with 400 validation_error, as Notion refuses a block it can't take.
        self.refused_words: list[str] = []
        #: The workspace's lifetime block limit (None: unlimited) and blocks made so far;
        #: deleting a block gives nothing back.
        self.block_cap: int | None = None
        self.blocks_made = 0

    def now(self) -> str:
        """Notion's timestamp for "now" (minute precision), from the injectable clock."""
        return iso_minute(self.clock)

    # ------------------------------------------------------------------ lookups

    def page(self, page_id: str) -> Page:
        if page_id not in self.pages:
            raise not_found("page", page_id)
        return self.pages[page_id]

    def database(self, database_id: str) -> Database:
        if database_id not in self.databases:
            raise not_found("database", database_id)
        return self.databases[database_id]

    def data_source(self, data_source_id: str) -> DataSource:
        if data_source_id not in self.data_sources:
            raise not_found("data source", data_source_id)
        return self.data_sources[data_source_id]

    def container(self, block_id: str) -> Page | Block:
        """A page or block that can be addressed as `/v1/blocks/{id}`."""
        found = self.pages.get(block_id) or self.blocks.get(block_id)
        if found is None:
            raise not_found("block", block_id)
        return found

    def is_trashed(self, object_id: str) -> bool:
        obj = (
            self.pages.get(object_id) or self.blocks.get(object_id) or self.databases.get(object_id)
        )
        return obj is not None and obj.in_trash

    def archived_in_chain(self, object_id: str) -> bool:
        """Whether this page/block or any page/block above it is archived (in trash)."""
        current: str | None = object_id
        while current is not None:
            if self.is_trashed(current):
                return True
            current = self._parent_container(current)
        return False

    def _parent_container(self, object_id: str) -> str | None:
        obj = self.pages.get(object_id) or self.blocks.get(object_id)
        if obj is None:
            return None
        parent = obj.parent
        return parent.get("block_id") or parent.get("page_id")

    def live_children(self, container_id: str) -> list[str]:
        """Ids under a container that Notion would list: archived ones are left out."""
        return [c for c in self.children.get(container_id, []) if not self.is_trashed(c)]

    def accepts_children(self, target: Page | Block) -> bool:
        return isinstance(target, Page) or can_have_children(target.type, target.content)

    def walk(self, container_id: str) -> Iterator[str]:
        """Every descendant id, depth first, archived ones included."""
        for child in self.children.get(container_id, []):
            yield child
            yield from self.walk(child)

    # ------------------------------------------------------------------ writes

    def insert_blocks(
        self,
        container_id: str,
        specs: list[BlockSpec],
        index: int | None = None,
        *,
        counted: bool = False,
    ) -> list[str]:
        """Create blocks (and their nested children) under a page or block.

        Past the workspace's lifetime `block_cap` nothing is created; `counted` says the
        caller already spent them (`spend_blocks`).
        """
        if not counted:
            self.spend_blocks(spec_count(specs))
        return self._insert(container_id, specs, index)

    def spend_blocks(self, count: int) -> None:
        """Count `count` new blocks (a page is one) against the lifetime `block_cap`.

        Past it, the answer is `BLOCK_CAP_ERROR`: Notion's wording of this refusal was not
        checked against a recording, only its documented behaviour (creates fail, edits,
        reads and deletes still work, deleting gives nothing back).
        """
        if self.block_cap is not None and self.blocks_made + count > self.block_cap:
            raise NotionError(*BLOCK_CAP_ERROR)
        self.blocks_made += count

    def _insert(self, container_id: str, specs: list[BlockSpec], index: int | None) -> list[str]:
        siblings = self.children.setdefault(container_id, [])
        position = len(siblings) if index is None else index
        parent = self.container_ref(container_id)
        created: list[str] = []
        for spec in specs:
            stamp = self.now()
            block = Block(new_id(), spec.type, spec.content, dict(parent), stamp, stamp)
            self.blocks[block.id] = block
            self.children[block.id] = []
            siblings.insert(position, block.id)
            position += 1
            self._insert(block.id, spec.children, None)
            created.append(block.id)
        self.touch(container_id)
        return created

    def container_ref(self, container_id: str) -> JSON:
        """The `parent` object a child of this page or block carries."""
        if container_id in self.pages:
            return {"type": "page_id", "page_id": container_id}
        return {"type": "block_id", "block_id": container_id}

    def touch(self, object_id: str) -> None:
        obj = self.pages.get(object_id) or self.blocks.get(object_id)
        if obj is not None:
            obj.last_edited_time = self.now()

    # ------------------------------------------------------------------ JSON builders

    def user_json(self) -> JSON:
        """`GET /v1/users/me`: the integration's bot user."""
        return {
            "object": "user",
            "id": self.bot_id,
            "name": "Firebreak",
            "avatar_url": None,
            "type": "bot",
            "bot": {
                "owner": {"type": "workspace", "workspace": True},
                "workspace_id": self.workspace_id,
                "workspace_name": self.workspace_name,
                "workspace_limits": {"max_file_upload_size_in_bytes": 5 * 1024 * 1024},
            },
        }

    def _stamps(self, created: str, edited: str) -> JSON:
        me = partial_user(self.bot_id)
        return {
            "created_time": created,
            "created_by": me,
            "last_edited_time": edited,
            "last_edited_by": dict(me),
        }

    def database_json(self, db: Database) -> JSON:
        return {
            "object": "database",
            "id": db.id,
            "title": copy.deepcopy(db.title),
            "description": [],
            "parent": copy.deepcopy(db.parent),
            "is_inline": db.is_inline,
            "in_trash": db.in_trash,
            "archived": db.in_trash,
            "is_locked": False,
            "created_time": db.created_time,
            "last_edited_time": db.created_time,
            "data_sources": [
                {"id": ds_id, "name": self.data_sources[ds_id].name} for ds_id in db.data_source_ids
            ],
            "icon": None,
            "cover": None,
            "url": f"https://www.notion.so/{compact_id(db.id)}",
            "public_url": None,
        }

    def data_source_json(self, ds: DataSource) -> JSON:
        db = self.databases[ds.database_id]
        return {
            "object": "data_source",
            "id": ds.id,
            "title": parse_rich_text([{"text": {"content": ds.name}}], "title"),
            "description": [],
            "parent": {"type": "database_id", "database_id": db.id},
            "database_parent": copy.deepcopy(db.parent),
            "is_inline": db.is_inline,
            "in_trash": db.in_trash,
            "archived": db.in_trash,
            **self._stamps(ds.created_time, ds.created_time),
            "properties": copy.deepcopy(ds.properties),
            "icon": None,
            "cover": None,
            "url": f"https://www.notion.so/{compact_id(ds.id)}",
            "public_url": None,
        }

    def page_json(self, page: Page) -> JSON:
        return {
            "object": "page",
            "id": page.id,
            **self._stamps(page.created_time, page.last_edited_time),
            "cover": copy.deepcopy(page.cover),
            "icon": copy.deepcopy(page.icon),
            "parent": copy.deepcopy(page.parent),
            "archived": page.in_trash,
            "in_trash": page.in_trash,
            "is_archived": page.is_archived,
            "is_locked": False,
            "properties": copy.deepcopy(page.properties),
            "url": page_url(page),
            "public_url": None,
        }

    def block_json(self, object_id: str) -> JSON:
        """A block object; pages and databases answer as child_page/child_database blocks."""
        if object_id in self.blocks:
            block = self.blocks[object_id]
            kind, content = block.type, copy.deepcopy(block.content)
            base = (block.parent, block.created_time, block.last_edited_time, block.in_trash)
        elif object_id in self.pages:
            page = self.pages[object_id]
            kind, content = "child_page", {"title": title_text(page.properties)}
            base = (page.parent, page.created_time, page.last_edited_time, page.in_trash)
        else:
            db = self.database(object_id)
            kind, content = "child_database", {"title": "".join(t["plain_text"] for t in db.title)}
            base = (db.parent, db.created_time, db.created_time, db.in_trash)
        parent, created, edited, trashed = base
        return {
            "object": "block",
            "id": object_id,
            "parent": copy.deepcopy(parent),
            **self._stamps(created, edited),
            "has_children": bool(self.live_children(object_id)),
            "archived": trashed,
            "in_trash": trashed,
            "type": kind,
            kind: content,
        }

    def tree(self, container_id: str, include_archived: bool = False) -> list[JSON]:
        """Nested block objects under a page/block, each with a `children` list.

        Sub-pages are listed as `child_page` blocks but not descended into, as in Notion.
        """
        ids = (
            self.children.get(container_id, [])
            if include_archived
            else self.live_children(container_id)
        )
        result = []
        for child in ids:
            node = self.block_json(child)
            node["children"] = [] if child in self.pages else self.tree(child, include_archived)
            result.append(node)
        return result


#: What a create past the workspace's block limit gets: status, code, message.
BLOCK_CAP_ERROR = (
    400,
    "validation_error",
    "This workspace has reached its block limit. Upgrade the workspace's plan to add more content.",
)


def spec_count(specs: list[BlockSpec]) -> int:
    """Blocks in `specs`, nested children included."""
    return sum(1 + spec_count(spec.children) for spec in specs)


def page_url(page: Page) -> str:
    """`https://app.notion.com/p/<Title-slug>-<32 hex id>`, the form Notion's API now
    answers (older answers had `https://www.notion.so/…`; the bot parses neither)."""
    slug = _SLUG_JUNK.sub("-", title_text(page.properties)).strip("-")
    compact = compact_id(page.id)
    base = "https://app.notion.com/p/"
    return f"{base}{slug}-{compact}" if slug else f"{base}{compact}"
