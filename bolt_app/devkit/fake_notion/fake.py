"""FakeNotion: a local, faithful stand-in for the Notion API (Notion-Version 2025-09-03).

The app, the demo and the benchmarks point the real `notion_client.Client` at it::

    with FakeNotion() as fake:
        database_id, data_source_id = fake.add_database()
        client = notion_client.Client(auth=FakeNotion.DEFAULT_TOKEN, base_url=fake.base_url)

It is a real HTTP server (threaded, on 127.0.0.1 and a random port) rather than a mock,
so retries, timeouts and connection handling are exercised for real. It enforces the
limits Notion enforces (a fake that accepts what Notion rejects hides bugs), answers with
Notion's error envelope, and can inject the failures production sees: 429 with
Retry-After, 5xx with JSON or HTML bodies, latency, resets, and a request that is applied
but never answered.

Modules: `notion_server` (HTTP, Notion's call record and wire form of faults),
`notion_api` (endpoints), `notion_store` (state, JSON shapes), `notion_blocks` /
`notion_props` / `notion_query` (validation of blocks and rich text, properties, filters).
Fault plans, the call log and `wait_for` are the generic ones FakeSlack uses too
(`bolt_app.devkit.common`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from bolt_app.devkit.common import ANY_KEY, CallLog, Fault, FaultPlan, wait_for
from bolt_app.devkit.fake_notion.api import WRITE_ROUTES, ApiRequest, databases_create, pages_create
from bolt_app.devkit.fake_notion.block_schema import plain_text_of
from bolt_app.devkit.fake_notion.common import JSON, Clock, NotionError, parse_id
from bolt_app.devkit.fake_notion.http import HTML_ERROR, NotionCall, NotionHTTPServer
from bolt_app.devkit.fake_notion.props import value_text
from bolt_app.devkit.fake_notion.workspace import NotionStore

__all__ = ["HTML_ERROR", "FakeNotion", "NotionCall", "NotionError", "default_postmortem_schema"]

T = TypeVar("T")

SEVERITIES = ("P0", "P1", "P2", "P3", "P4")
STATUSES = ("Active", "Mitigated", "Resolved", "Postmortem", "Done", "Canceled")
_SEVERITY_COLORS = ("red", "orange", "yellow", "blue", "gray")


def default_postmortem_schema() -> JSON:
    """The postmortem database's properties, in `initial_data_source.properties` form."""
    return {
        "Name": {"title": {}},
        "Incident": {"rich_text": {}},
        "Severity": {"select": {"options": _options(SEVERITIES, _SEVERITY_COLORS)}},
        "Status": {"select": {"options": _options(STATUSES, ("default",) * len(STATUSES))}},
        "Declared": {"date": {}},
        "Channel": {"url": {}},
    }


def _options(names: Iterable[str], colors: Iterable[str]) -> list[JSON]:
    return [{"name": name, "color": color} for name, color in zip(names, colors, strict=True)]


def _title(text: str) -> JSON:
    return {"title": [{"type": "text", "text": {"content": text}}]}


class FakeNotion:
    """A threaded fake Notion API server plus helpers to seed and inspect its state."""

    DEFAULT_TOKEN = "ntn_fake_token"

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        workspace_name: str = "Fake Workspace",
    ) -> None:
        self.store = NotionStore(clock=clock, workspace_name=workspace_name)
        # Calls are filed under their route ("pages.create"), the names faults use too.
        self._log: CallLog[NotionCall] = CallLog(key=lambda call: call.route)
        self._faults = FaultPlan()
        self._tokens = set(tokens)
        self._address = (host, port)
        self._server: NotionHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeNotion:
        """Bind and serve in a daemon thread; returns self for chaining.

        After a `stop()`, starting again binds the same port with the same state, so a
        test can take "Notion" down and bring it back without the app noticing a new URL.
        """
        if self._server is not None:
            return self
        server = NotionHTTPServer(self._address, self.store, self._log, self._faults, self._tokens)
        self._address = (self._address[0], int(server.server_address[1]))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-notion",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release held or delayed connections; returns in well under 1 s."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def __enter__(self) -> FakeNotion:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`; notion-client appends `/v1/...` itself."""
        if self._server is None:
            raise RuntimeError("FakeNotion is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------------ auth

    def add_token(self, token: str) -> None:
        """Accept another bearer token (e.g. a second integration)."""
        self._tokens.add(token)

    def revoke_token(self, token: str) -> None:
        """Make a token invalid from now on: its calls get 401 `unauthorized`."""
        self._tokens.discard(token)

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        method_or_route: str,
        *,
        status: int | None = 429,
        retry_after: float = 1,
        times: int | None = 1,
        error_code: str | None = None,
        delay: float | None = None,
        reset: bool = False,
        drop_response_after_handling: bool = False,
    ) -> None:
        """Make the next `times` calls to a route (e.g. "pages.create", or "*") fail.

        In order: wait `delay` seconds; then `reset` closes the connection with no answer;
        `drop_response_after_handling` applies the request but never answers; otherwise
        the call is answered with `status` (429 adds Retry-After, as does 503; 502 or
        `error_code="html"` gives a non-JSON body) without being applied. `status=None`
        with a `delay` makes a merely slow call. `times=None` means every call; `times=0`
        arms nothing.
        """
        if times == 0:
            return
        fault = Fault(
            status=status,
            error=error_code,
            retry_after=retry_after,
            delay=delay,
            reset=reset,
            drop_response=drop_response_after_handling,
        )
        self._faults.arm(method_or_route, fault, times)

    def set_latency(self, seconds: float, route: str = ANY_KEY) -> None:
        """Add fixed latency to every call (or one route's calls); 0 removes it."""
        self._faults.set_latency(seconds, route)

    def rate_limit(self, requests: int | None, window_s: float = 1.0) -> None:
        """Allow `requests` per `window_s` seconds; more get 429 with Retry-After, not
        applied (None lifts the limit)."""
        server = self._server
        if server is None:
            raise RuntimeError("FakeNotion is not running; call start() first")
        server.rate.set(requests, window_s)

    def refuse_blocks_containing(self, *words: str) -> None:
        """Refuse (400 validation_error) every append whose blocks contain one of `words`."""
        with self.store.lock:
            self.store.refused_words = list(words)

    def block_cap(self, blocks: int | None) -> None:
        """The workspace's lifetime block limit, counted from now (None: unlimited).

        Like Notion's Free plan limit: past it, creating pages or blocks fails, while
        reads, edits and deletes still work, and deleting gives no capacity back.
        """
        with self.store.lock:
            self.store.block_cap = None if blocks is None else self.store.blocks_made + blocks

    def clear_faults(self) -> None:
        """Drop pending faults and latency."""
        self._faults.clear()

    # ------------------------------------------------------------------ call log

    @property
    def calls(self) -> list[NotionCall]:
        """A snapshot of every call received, in arrival order."""
        return self._log.calls

    def calls_to(self, route: str) -> list[NotionCall]:
        """Calls to one route (e.g. "pages.create"), in arrival order."""
        return self._log.to(route)

    def count(self, route: str) -> int:
        """How many calls to one route arrived, answered or not."""
        return self._log.count(route)

    def write_count(self) -> int:
        """Calls to routes that change state (creates, updates, appends, deletes).

        A data source query is a POST but reads only, so it is not counted.
        """
        return sum(1 for call in self._log.calls if call.route in WRITE_ROUTES)

    def reset_calls(self) -> None:
        """Forget recorded calls (e.g. after seeding through the API)."""
        self._log.clear()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Poll `predicate` until it returns something truthy; TimeoutError at the deadline.

        Kept as a method so tests need only the fake; it is `common.wait_for`.
        """
        return wait_for(predicate, timeout)

    # ------------------------------------------------------------------ seeding

    def add_database(
        self,
        title: str = "Postmortems",
        properties: JSON | None = None,
        *,
        parent_page_id: str | None = None,
    ) -> tuple[str, str]:
        """Create a database with one data source; returns (database_id, data_source_id).

        `properties` uses the request form of `initial_data_source.properties`; the
        default is the postmortem schema (Name, Incident, Severity, Status, Declared,
        Channel). The parent is a new workspace page unless `parent_page_id` is given.
        """
        parent = parent_page_id or self.add_page(f"{title} home")
        body = {
            "parent": {"type": "page_id", "page_id": parent},
            "title": _title(title)["title"],
            "initial_data_source": {"properties": properties or default_postmortem_schema()},
        }
        database = databases_create(self.store, ApiRequest(body=body))
        return str(database["id"]), str(database["data_sources"][0]["id"])

    def add_page(
        self,
        title: str = "Firebreak",
        *,
        parent_page: bool = True,
        parent_id: str | None = None,
        data_source_id: str | None = None,
        properties: JSON | None = None,
        children: list[JSON] | None = None,
    ) -> str:
        """Create a page directly (no HTTP, no call recorded); returns its id.

        By default (`parent_page=True`) it is a workspace-level page, the usual parent for
        `databases.create`. With `parent_id` it goes under that page; with
        `data_source_id` it is a row there (`properties` in request form, `title` filling
        the title property when not given), e.g. to seed an already-created postmortem.
        """
        if not (parent_page or parent_id or data_source_id):
            raise ValueError("a page needs a parent: parent_page, parent_id or data_source_id")
        body: JSON = {"parent": self._seed_parent(parent_id, data_source_id)}
        body["properties"] = (
            properties if properties is not None else self._seed_title(title, data_source_id)
        )
        if children is not None:
            body["children"] = children
        return str(pages_create(self.store, ApiRequest(body=body))["id"])

    def _seed_parent(self, parent_id: str | None, data_source_id: str | None) -> JSON:
        if data_source_id:
            return {"type": "data_source_id", "data_source_id": data_source_id}
        if parent_id:
            return {"type": "page_id", "page_id": parent_id}
        return {"type": "workspace", "workspace": True}

    def _seed_title(self, title: str, data_source_id: str | None) -> JSON:
        if not data_source_id:
            return {"title": _title(title)}
        with self.store.lock:
            schema = self.store.data_source(self._id(data_source_id)).properties
            name = next(n for n, p in schema.items() if p["type"] == "title")
        return {name: _title(title)}

    # ------------------------------------------------------------------ inspection

    def pages(
        self, data_source_id: str | None = None, include_archived: bool = False
    ) -> list[JSON]:
        """Page objects in creation order, optionally of one data source; trashed ones hidden."""
        wanted = self._id(data_source_id) if data_source_id else None
        with self.store.lock:
            return [
                self.store.page_json(page)
                for page in self.store.pages.values()
                if (wanted is None or page.data_source_id == wanted)
                and (include_archived or not page.in_trash)
            ]

    def trash_page(self, page_id: str) -> None:
        """A person moves the page to Notion's trash (`in_trash`, alias `archived`)."""
        with self.store.lock:
            page_key = self._id(page_id)
            self.store.page(page_key).in_trash = True
            self.store.touch(page_key)

    def delete_page(self, page_id: str) -> None:
        """A person deletes the page for good (emptied from the trash) or stops sharing
        it with the integration: from now on every request for it is a 404."""
        with self.store.lock:
            page_key = self._id(page_id)
            self.store.page(page_key)  # NotionError if unknown
            del self.store.pages[page_key]

    def archive_page(self, page_id: str) -> None:
        """A person archives the page in Notion (`is_archived`; not the trash)."""
        with self.store.lock:
            self.store.page(self._id(page_id)).is_archived = True

    def page(self, page_id: str) -> JSON:
        """One page object (as `GET /v1/pages/{id}` returns it); NotionError if unknown."""
        with self.store.lock:
            return self.store.page_json(self.store.page(self._id(page_id)))

    def block(self, block_id: str) -> JSON:
        """One block object (pages answer as `child_page` blocks)."""
        with self.store.lock:
            return self.store.block_json(self._id(block_id))

    def data_source(self, data_source_id: str) -> JSON:
        """One data source object, with its current property schema."""
        with self.store.lock:
            return self.store.data_source_json(self.store.data_source(self._id(data_source_id)))

    def children_tree(self, block_id: str, include_archived: bool = False) -> list[JSON]:
        """The blocks under a page or block, nested: each block has a `children` list."""
        with self.store.lock:
            return self.store.tree(self._id(block_id), include_archived)

    @staticmethod
    def plain_text(block: JSON) -> str:
        """A block's visible text: its rich text, a bookmark's URL, a sub-page's title."""
        kind = str(block.get("type"))
        payload: Any = block.get(kind) or {}
        if "rich_text" in payload:
            return plain_text_of(payload["rich_text"])
        if kind == "bookmark":
            return str(payload.get("url", ""))
        return str(payload.get("title", ""))

    @staticmethod
    def property_text(page: JSON, name: str) -> str | None:
        """A page property as text: rich text/title, select/status name, date start, url."""
        value = page["properties"].get(name)
        return None if value is None else value_text(value)

    @staticmethod
    def _id(raw: str) -> str:
        parsed = parse_id(raw)
        if parsed is None:
            raise ValueError(f"not a Notion id: {raw!r}")
        return parsed
