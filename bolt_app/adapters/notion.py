"""The Notion adapter: postmortem pages in a Notion database, through the official client.

Thin and typed on purpose: services call :class:`NotionGateway` with plain values and get
plain values or one of our exceptions back. Nothing here knows about Slack or the store.

Facts this module relies on (notion-client 3.1, ``Notion-Version: 2025-09-03``):

* A database holds data sources. Pages are created with a ``data_source_id`` parent and found
  with ``POST /v1/data_sources/{id}/query``; the data source id comes from
  ``GET /v1/databases/{id}`` and is resolved once.
* The client's own retries are off (``retry=False``): left on, it sleeps ``Retry-After``
  twice inside a call, page creation included, where we can neither bound nor test it.
  Our rules instead: a 429 or a 529 ``service_overload`` did nothing, so it is sent again
  after ``Retry-After`` for up to ``MAX_PAUSE_SECONDS`` (a rate limit pauses the work, it
  doesn't fail it); page creation waits only ``CREATE_PAUSE_SECONDS``, then leaves it to
  its caller, which adopts or leaves it to the reconciler; a read or an update that met
  a 5xx is sent again twice. Nothing else is retried here: a retried ``POST /v1/pages`` or block
  append that timed out can write twice, and whether to try again is the caller's
  decision (its attempt protocol adopts a page an unanswered create made).
* Per request: at most 100 blocks in any children array, 1,000 blocks in total, two levels of
  nesting below the top-level blocks, and about 500 KB of JSON. :func:`plan_chunks` keeps
  every request inside these limits; rich-text limits are enforced by
  :mod:`bolt_app.formats.notion_blocks`.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from notion_client import Client
from notion_client.errors import (
    APIResponseError,
    HTTPResponseError,
    NotionClientErrorBase,
    RequestTimeoutError,
)

from bolt_app.adapters.pace import Pace
from bolt_app.core import metrics
from bolt_app.core.domain import SEVERITIES, Status
from bolt_app.core.errors import FirebreakError
from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.notion_blocks import Block

MAX_CHILDREN_PER_ARRAY = 100
"""Most blocks Notion accepts in one ``children`` array."""

MAX_BLOCKS_PER_REQUEST = 1000
"""Most blocks Notion accepts in one request, nested children included."""

MAX_NESTING = 2
"""Levels of ``children`` Notion accepts below a request's top-level blocks."""

MAX_REQUEST_BYTES = 400_000
"""Our budget for one request's blocks as JSON: a margin under Notion's 500 KB payload limit."""

PAGE_SIZE = 100
"""Largest page size Notion's list and query endpoints accept."""

INCIDENT_PROPERTY = "Incident"
STATUS_OPTIONS = {status.value: status.option for status in Status}
#: The Severity options the bot writes.
SEVERITY_OPTIONS = tuple(str(s) for s in SEVERITIES)
"""Our statuses -> the options of the database's "Status" select property."""

OPTIONAL_PROPERTIES = {
    "severity": ("Severity", "select"),
    "status": ("Status", "select"),
    "declared": ("Declared", "date"),
    "channel": ("Channel", "url"),
}
"""Optional database properties: our field -> (property name, the Notion type
`notion-setup` makes). Severity and Status may also be Notion's own `status` type."""

#: The types each optional property may have and the bot writes (`select` and `status`
#: take the same `{"name": …}` value; a status option must exist already).
WRITABLE_TYPES = {
    "severity": ("select", "status"),
    "status": ("select", "status"),
    "declared": ("date",),
    "channel": ("url",),
}


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotionPage:
    """A page as the rest of the bot needs it: its id and the URL Notion gave it."""

    id: str
    url: str


@dataclass(frozen=True)
class PostmortemFields:
    """What we write into the database properties of a postmortem page."""

    label: str
    """``INC-42``: written to the required "Incident" text property, used to find the page."""
    title: str
    """The incident's title; the page title is ``"<label>: <title>"``."""
    severity: str | None = None
    status: str | None = None
    declared_at: datetime | None = None
    channel_url: str | None = None
    mark: str | None = None
    """The creating attempt's token, written as the link of the label (`mark_url`)."""

    @property
    def page_title(self) -> str:
        """``INC-42: Checkout is down`` (a title already starting with the label is kept)."""
        prefix = f"{self.label}:"
        return self.title if self.title.startswith(prefix) else f"{prefix} {self.title}"


@dataclass(frozen=True)
class PostmortemSchema:
    """The postmortem database as resolved once: ids and the actual property names.

    Property names are matched case-insensitively, so the names stored here are the ones
    the database really uses. An optional property is None unless it exists with our type.
    """

    database_id: str
    data_source_id: str
    title: str
    incident: str
    severity: str | None = None
    status: str | None = None
    declared: str | None = None
    channel: str | None = None
    #: `select` or `status`: how the value is written (`{type: {"name": …}}`).
    severity_type: str = "select"
    status_type: str = "select"
    #: What the bot can't write, with the fix (`schema_warnings`).
    warnings: tuple[str, ...] = ()


# --- errors -----------------------------------------------------------------------------------


#: What `NotionGateway.page_status` finds.
PageState = Literal["live", "trashed", "archived", "gone"]


class NotionError(FirebreakError):
    """A Notion call failed. ``reason`` is a short sentence that is safe to show in Slack."""

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.status = status
        self.retryable = retryable
        self.detail = detail
        """Notion's own message, for logs (it can quote page content, so not for Slack)."""
        self.retry_after = retry_after
        """Seconds Notion asked us to wait (429), when it said."""


class NotionTimeout(NotionError):
    """No usable answer: the request may or may not have been applied.

    Raised for our timeout, a 504 (Notion's own timeout) and a connection that broke after
    the request was sent. A create that ends this way may have made the page: look for it
    before creating another. (Other 5xx answers most likely mean "not applied", but the
    attempt protocol does not rely on that either.)
    """


class NotionSchemaError(NotionError):
    """The database lacks a required property or has it with the wrong type."""


class NotionPartialWrite(NotionError):
    """The page was created but not all of its content was written.

    Carries the page, so a caller can adopt it and finish with
    :meth:`NotionGateway.resume_template`.
    """

    def __init__(self, page: NotionPage, cause: NotionError) -> None:
        super().__init__(
            f"the page was created but part of the template is missing: {cause.reason}",
            code=cause.code,
            status=cause.status,
            retryable=cause.retryable,
            detail=cause.detail,
        )
        self.page = page


_REASONS = {
    "unauthorized": "the Notion token is invalid or revoked",
    "restricted_resource": "the Notion integration lacks a capability it needs (read/insert)",
    "rate_limited": "Notion is rate-limiting us",
    "conflict_error": "Notion reported a conflicting edit",
    "validation_error": "Notion rejected the request as invalid",
    "invalid_json": "Notion rejected the request as invalid",
    "invalid_request": "Notion rejected the request as invalid",
    "invalid_request_url": "Notion rejected the request as invalid",
}
_RETRYABLE_CODES = frozenset({"rate_limited", "conflict_error"})


def translate_error(error: Exception, *, missing: str) -> NotionError:
    """Our typed error for an exception raised by notion-client or httpx.

    ``missing`` is the reason to give for a 404, which depends on what was asked for (Notion
    answers 404 both for an absent object and for one not shared with the integration).
    """
    if isinstance(error, RequestTimeoutError):
        return NotionTimeout("Notion didn't answer in time", code=str(error.code), retryable=True)
    if isinstance(error, HTTPResponseError):
        return _from_response(error, missing=missing)
    if isinstance(error, httpx.ConnectError | httpx.ProxyError):
        return NotionError(f"couldn't connect to Notion ({type(error).__name__})", retryable=True)
    if isinstance(error, httpx.NetworkError | httpx.RemoteProtocolError):
        # Sent, then the connection broke: like a timeout, the outcome is unknown.
        return NotionTimeout("the connection to Notion dropped before it answered", retryable=True)
    return NotionError(f"the Notion request could not be sent ({type(error).__name__})")


def _from_response(error: HTTPResponseError, *, missing: str) -> NotionError:
    """Map an HTTP error answer (JSON envelope or not) to our error."""
    code = str(getattr(error.code, "value", error.code))
    status = error.status
    known = isinstance(error, APIResponseError)
    if status == 504:
        return NotionTimeout(
            "Notion timed out while handling the request",
            code=code if known else None,
            status=status,
            retryable=True,
            detail=str(error),
        )
    if status == 404 and known:
        reason = missing
    elif known and code in _REASONS:
        reason = _REASONS[code]
    else:
        reason = f"Notion returned {status}"
    return NotionError(
        reason,
        code=code if known else None,
        status=status,
        retryable=status >= 500 or code in _RETRYABLE_CODES,
        detail=str(error),
        retry_after=retry_after_header(error.headers) if status in RATE_LIMITED else None,
    )


#: Notion's answers that mean "not now": nothing was done, try again after Retry-After.
RATE_LIMITED = (429, 529)
#: The longest a call waits out Notion's rate limits, in all, before it fails.
MAX_PAUSE_SECONDS = 120.0
#: The pause when a 429 or 529 comes without a Retry-After.
DEFAULT_PAUSE_SECONDS = 1.0
#: The action name of page creation, which waits out only a short rate limit (see `_call`).
CREATE_ACTION = "create the postmortem page"
#: The longest a page creation waits out Notion's rate limits: a declare never waits a
#: minute, its page is made by the attempt protocol and the reconciler instead.
CREATE_PAUSE_SECONDS = 2.0


#: An idempotent call (a read, an update that sets a value) that met a 500, 502 or 503 is
#: sent again this many times, after READ_RETRY_PAUSE_SECONDS, doubling. Creates and
#: appends never are: they could land twice.
READ_RETRIES = 2
READ_RETRY_PAUSE_SECONDS = 0.5
_SERVER_ERRORS = (500, 502, 503)


def _pause_for(error: NotionError, idempotent: bool, attempt: int) -> float | None:
    """How long to wait before sending a request Notion turned away; None to fail now."""
    if error.status in _SERVER_ERRORS and idempotent and attempt < READ_RETRIES:
        return READ_RETRY_PAUSE_SECONDS * 2**attempt
    if error.status not in RATE_LIMITED:
        return None
    return error.retry_after if error.retry_after is not None else DEFAULT_PAUSE_SECONDS


def retry_after_header(headers: httpx.Headers) -> float | None:
    """Notion's Retry-After in seconds (it sends an integer), or None."""
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# --- schema -----------------------------------------------------------------------------------


def parse_schema(database_id: str, data_source: dict[str, Any]) -> PostmortemSchema:
    """Read what we need from a data source object; refuse a database we cannot use.

    Raises NotionSchemaError, naming the property and the fix, when there is no title
    property (impossible in Notion, but cheap to check) or no "Incident" text property.
    """
    props: dict[str, Any] = data_source.get("properties") or {}
    title = next((name for name, prop in props.items() if prop.get("type") == "title"), None)
    if title is None:
        raise NotionSchemaError("the postmortem database has no title property")
    optional = {
        field: _optional_property(props, name, WRITABLE_TYPES[field])
        for field, (name, _kind) in OPTIONAL_PROPERTIES.items()
    }
    return PostmortemSchema(
        database_id=database_id,
        data_source_id=str(data_source["id"]),
        title=title,
        incident=_incident_property(props),
        **optional,
        severity_type=_type_of(props, optional["severity"]),
        status_type=_type_of(props, optional["status"]),
        warnings=tuple(schema_warnings(data_source)),
    )


def _type_of(props: dict[str, Any], name: str | None) -> str:
    return str(props[name].get("type")) if name is not None else "select"


def _find_property(props: dict[str, Any], wanted: str) -> str | None:
    """The actual name of property ``wanted``, matched case-insensitively and trimmed."""
    key = wanted.casefold()
    return next((name for name in props if name.strip().casefold() == key), None)


def _incident_property(props: dict[str, Any]) -> str:
    """The required "Incident" text property, which is how a page is found again."""
    name = _find_property(props, INCIDENT_PROPERTY)
    if name is None:
        raise NotionSchemaError(
            'the postmortem database has no "Incident" property: add a Text property named'
            ' "Incident" (Firebreak stores the incident label, e.g. INC-42, in it)'
        )
    kind = props[name].get("type")
    if kind != "rich_text":
        raise NotionSchemaError(
            f'the "{name}" property of the postmortem database is of type {kind}: change it to Text'
        )
    return name


def _optional_property(props: dict[str, Any], wanted: str, kinds: tuple[str, ...]) -> str | None:
    """The property's actual name if it exists with a type we write, else None."""
    name = _find_property(props, wanted)
    if name is None or props[name].get("type") not in kinds:
        return None
    return name


def schema_warnings(data_source: dict[str, Any]) -> list[str]:
    """What in the database the bot can't write, each with its fix: said once at
    start-up (in the log) and by `check`. A missing property is no warning here."""
    props: dict[str, Any] = data_source.get("properties") or {}
    warnings = []
    for field, (wanted, _made) in OPTIONAL_PROPERTIES.items():
        name = _find_property(props, wanted)
        if name is None:
            continue
        actual = str(props[name].get("type"))
        kinds = WRITABLE_TYPES[field]
        if actual not in kinds:
            allowed = " or ".join(kinds)
            warnings.append(
                f'"{name}" is a {actual} property, which Firebreak can\'t write: change it '
                f"to {allowed} (Firebreak leaves it empty until then)"
            )
        elif actual == "status":
            missing = _missing_status_options(field, props[name])
            if missing:
                warnings.append(
                    f'"{name}" is a Status property without the options '
                    f"{', '.join(missing)}: add them in Notion (the API can't create "
                    "status options), or change it to a Select"
                )
    return warnings


def _missing_status_options(field: str, prop: dict[str, Any]) -> list[str]:
    have = {str(o.get("name")) for o in (prop.get("status") or {}).get("options") or []}
    wanted = list(STATUS_OPTIONS.values()) if field == "status" else list(SEVERITY_OPTIONS)
    return [name for name in wanted if name not in have]


# --- properties -------------------------------------------------------------------------------


#: Notion gives `created_time` to the minute.
CREATED_TIME_ROUNDING = timedelta(minutes=1)

MARK_BASE = "https://firebreak.invalid/attempt/"
"""Where a page's mark points: a reserved domain (RFC 2606), so the link goes nowhere."""


def mark_url(token: str) -> str:
    """The link the creating attempt puts on a page's label: it says which attempt of
    which deployment made the page, which the label alone can't (see `find_postmortem`)."""
    return f"{MARK_BASE}{token}"


def build_properties(
    schema: PostmortemSchema, fields: PostmortemFields, *, label: bool = True
) -> dict[str, Any]:
    """Database property values for ``fields``, only for properties the database has.

    `label=False` leaves the "Incident" property as it is: it never changes after the
    create, which wrote the label with its mark.
    """
    values: dict[str, Any] = {schema.title: {"title": _rich_property(fields.page_title)}}
    if label:
        link = mark_url(fields.mark) if fields.mark else None
        values[schema.incident] = {"rich_text": [nb.text(fields.label, link=link)]}
    if schema.severity and fields.severity:
        values[schema.severity] = {schema.severity_type: {"name": fields.severity}}
    if schema.status and fields.status:
        values[schema.status] = {schema.status_type: {"name": status_option(fields.status)}}
    if schema.declared and fields.declared_at:
        values[schema.declared] = {"date": {"start": iso_utc(fields.declared_at)}}
    if schema.channel and fields.channel_url and nb.utf16_len(fields.channel_url) <= 2000:
        values[schema.channel] = {"url": fields.channel_url}
    return values


def _rich_property(content: str) -> list[nb.RichText]:
    """A text/title property value, split at 2,000 units and capped at 100 items."""
    return nb.split_rich_text([nb.text(content)])[: nb.MAX_RICH_TEXT_ITEMS]


def status_option(status: str) -> str:
    """The "Status" select option for one of our statuses (``"active"`` -> ``"Active"``)."""
    try:
        return STATUS_OPTIONS[status.lower()]
    except KeyError:
        raise ValueError(f"unknown incident status {status!r}") from None


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken to be UTC already (we store UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds")


# --- chunking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedBlock:
    """A block as it can be sent, and the children that must follow once it exists.

    A block whose subtree does not fit one request (too deep, a children array over 100,
    too many blocks or bytes) is sent without children; they are then appended to the id
    Notion gives it, where they again get a request's full allowance.
    """

    block: Block
    deferred: list[Block]


def block_count(block: Block) -> int:
    """Blocks in ``block``'s subtree, itself included: what Notion counts per request."""
    return 1 + sum(block_count(child) for child in nb.children_of(block))


def _nesting(block: Block) -> int:
    """Levels of children below ``block`` (0 for a leaf)."""
    return max((1 + _nesting(child) for child in nb.children_of(block)), default=0)


def _widest(block: Block) -> int:
    """The longest children array anywhere in ``block``'s subtree."""
    children = nb.children_of(block)
    return max([len(children), *(_widest(child) for child in children)])


def _json_bytes(block: Block) -> int:
    """Size of the block as Notion receives it (UTF-8 JSON)."""
    return len(json.dumps(block, ensure_ascii=False, separators=(",", ":")).encode())


def _fits_one_request(block: Block) -> bool:
    """Whether the block and all its children can go in one request as they are."""
    return (
        _nesting(block) <= MAX_NESTING
        and _widest(block) <= MAX_CHILDREN_PER_ARRAY
        and block_count(block) <= MAX_BLOCKS_PER_REQUEST
        and _json_bytes(block) <= MAX_REQUEST_BYTES
    )


def plan_block(block: Block) -> PlannedBlock:
    """Send ``block`` whole when it fits one request, else without children (deferred)."""
    if _fits_one_request(block):
        return PlannedBlock(block, [])
    return PlannedBlock(nb.with_children(block, None), nb.children_of(block))


def plan_chunks(blocks: Sequence[Block]) -> list[list[PlannedBlock]]:
    """Group blocks, in order, into requests that respect every per-request limit.

    Greedy: a chunk closes when the next block would pass 100 top-level blocks, 1,000 blocks
    in total or the byte budget. Order is preserved within and across chunks.
    """
    chunks: list[list[PlannedBlock]] = []
    current: list[PlannedBlock] = []
    count = size = 0
    for planned in map(plan_block, blocks):
        block_total, block_bytes = block_count(planned.block), _json_bytes(planned.block)
        full = (
            len(current) >= MAX_CHILDREN_PER_ARRAY
            or count + block_total > MAX_BLOCKS_PER_REQUEST
            or size + block_bytes > MAX_REQUEST_BYTES
        )
        if current and full:
            chunks.append(current)
            current, count, size = [], 0, 0
        current.append(planned)
        count += block_total
        size += block_bytes
    if current:
        chunks.append(current)
    return chunks


def chunk_blocks(blocks: Sequence[Block]) -> list[list[Block]]:
    """The request-ready blocks of :func:`plan_chunks` (deferred children left out)."""
    return [[planned.block for planned in chunk] for chunk in plan_chunks(blocks)]


def split_for_create(blocks: Sequence[Block]) -> tuple[list[Block], list[Block]]:
    """Blocks to send inline with ``pages.create``, and the rest to append afterwards.

    ``pages.create`` does not return the ids of the children it creates, so the inline part
    stops before the first block whose children would have to be deferred.
    """
    chunks = plan_chunks(blocks)
    first = chunks[0] if chunks else []
    inline = []
    for planned in first:
        if planned.deferred:
            break
        inline.append(planned.block)
    return inline, list(blocks[len(inline) :])


# --- the gateway ------------------------------------------------------------------------------

_DATABASE_MISSING = "the postmortem database isn't shared with the integration (or doesn't exist)"
_PAGE_MISSING = "the Notion page or block no longer exists or isn't shared with the integration"


class NotionGateway:
    """Postmortem pages in one Notion database, behind a small typed API."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        database_id: str,
        timeout_s: float = 15.0,
        logger: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._log = logger or logging.getLogger(__name__)
        self._sleep = sleep
        #: The request budget this view spends before every request (None: unpaced).
        self._pace: Pace | None = None
        self._timeout_s = timeout_s
        self._database_id = database_id
        self._schema: PostmortemSchema | None = None
        self._schema_lock = threading.Lock()
        self._client = _build_client(token, base_url, timeout_s, self._log.getChild("client"))

    def paced(self, pace: Pace | None) -> NotionGateway:
        """This gateway (the same connection pool and schema) spending `pace` before every
        request; `None` returns it unchanged. The transcript's syncs use one, so that all
        incidents' syncs share one budget while declares and commands never wait on it."""
        if pace is None:
            return self
        view = copy.copy(self)
        view._pace = pace
        return view

    @property
    def timeout_s(self) -> float:
        """Per-request timeout: also how long an unanswered write may still land at Notion."""
        return self._timeout_s

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    # schema

    def schema(self) -> PostmortemSchema:
        """The database's data source and property names, resolved once (thread-safe).

        A failure is not cached, so a later call tries again (e.g. after the database is
        shared with the integration). Raises NotionSchemaError for an unusable database.
        """
        cached = self._schema
        if cached is not None:
            return cached
        with self._schema_lock:
            if self._schema is None:
                self._schema = self._load_schema()
            return self._schema

    def _load_schema(self) -> PostmortemSchema:
        database = self._call(
            "read the postmortem database",
            self._client.databases.retrieve,
            idempotent=True,
            missing=_DATABASE_MISSING,
            database_id=self._database_id,
        )
        sources = database.get("data_sources") or []
        if not sources:
            raise NotionSchemaError("the postmortem database has no data source")
        if len(sources) > 1:
            self._log.info("Notion database has %d data sources; using the first", len(sources))
        source = self._call(
            "read the postmortem data source",
            self._client.data_sources.retrieve,
            idempotent=True,
            missing=_DATABASE_MISSING,
            data_source_id=sources[0]["id"],
        )
        schema = parse_schema(self._database_id, source)
        for warning in schema.warnings:
            self._log.warning("Notion postmortem database: %s", warning)
        return schema

    # pages

    def create_postmortem(self, fields: PostmortemFields, blocks: list[Block]) -> NotionPage:
        """Create the page with its properties and template, in one ``POST /v1/pages``.

        Blocks beyond what fits that request are appended before returning. The POST is never
        retried here (only the client's own 429 retries apply): on NotionTimeout the page may
        exist, and the caller's attempt protocol adopts it with :meth:`find_postmortem`. If an
        append fails after the page exists, NotionPartialWrite carries the page.
        """
        schema = self.schema()
        inline, rest = split_for_create(blocks)
        response = self._call(
            CREATE_ACTION,
            self._client.pages.create,
            missing=_DATABASE_MISSING,
            parent={"type": "data_source_id", "data_source_id": schema.data_source_id},
            properties=build_properties(schema, fields),
            children=inline,
        )
        page = _page(response)
        self._log.info("created Notion page %s for %s", page.id, fields.label)
        if rest:
            self._append_rest(page, rest)
        return page

    def _append_rest(self, page: NotionPage, rest: list[Block]) -> None:
        """Append the template's tail; a failure must not hide that the page exists."""
        try:
            self.append_blocks(page.id, rest)
        except NotionError as error:
            raise NotionPartialWrite(page, error) from error

    def find_postmortem(
        self, label: str, marks: Collection[str], *, unmarked_since: datetime | None = None
    ) -> NotionPage | None:
        """The live page labelled ``label`` that one of the attempts ``marks`` made; the
        oldest if there are several.

        A page with the label but none of the marks is someone else's (another deployment,
        a store that was reset, a person) and never ours. `unmarked_since` is for an
        attempt made before marks existed: a page without a mark created after that
        moment (less Notion's rounding of `created_time` to the minute) is taken as its.
        Archived and trashed pages are ignored. Ties on ``created_time`` are broken by id,
        so every process adopts the same page.
        """
        schema = self.schema()
        query = {
            "filter": {"property": schema.incident, "rich_text": {"equals": label}},
            "sorts": [{"timestamp": "created_time", "direction": "ascending"}],
        }
        results = self._paginate(
            "search the postmortem database",
            self._client.data_sources.query,
            missing=_DATABASE_MISSING,
            data_source_id=schema.data_source_id,
            **query,
        )
        since = None
        if unmarked_since is not None:
            aware = unmarked_since if unmarked_since.tzinfo else unmarked_since.replace(tzinfo=UTC)
            since = aware - CREATED_TIME_ROUNDING
        matches = [
            page
            for page in results
            if page.get("object") == "page"
            and _is_live(page)
            and _property_text(page, schema.incident) == label
            and _made_by(page, schema.incident, marks, since)
        ]
        if not matches:
            return None
        oldest = min(matches, key=lambda page: (page.get("created_time", ""), page["id"]))
        return _page(oldest)

    def label_numbers(self, prefix: str) -> list[int]:
        """The numbers of the labels ``<prefix>-<n>`` the database's live pages carry,
        whoever made them: start-up compares them with the store's next number.

        One query per 100 pages with a label of ours (Notion filters on the prefix).
        """
        schema = self.schema()
        pattern = re.compile(rf"{re.escape(prefix)}-(\d+)", re.IGNORECASE)
        results = self._paginate(
            "read the postmortem database's labels",
            self._client.data_sources.query,
            missing=_DATABASE_MISSING,
            data_source_id=schema.data_source_id,
            filter={"property": schema.incident, "rich_text": {"starts_with": f"{prefix}-"}},
        )
        numbers = []
        for page in results:
            found = pattern.fullmatch(_property_text(page, schema.incident).strip())
            if page.get("object") == "page" and _is_live(page) and found:
                numbers.append(int(found.group(1)))
        return numbers

    def retrieve_page(self, page_id: str) -> NotionPage | None:
        """The page, or None if it is gone: 404, archived or in the trash."""
        response = self._page_object(page_id)
        return _page(response) if response is not None and _is_live(response) else None

    def page_status(self, page_id: str) -> tuple[PageState, datetime | None]:
        """Where a person left the page: `live`, `trashed` (`in_trash`, or its deprecated
        alias `archived`), `archived` (`is_archived`) or `gone` (404: deleted, or no
        longer shared with the integration); and when it was last edited (putting it
        away is an edit, the last one it can get), None for a page that is gone."""
        page = self._page_object(page_id)
        if page is None:
            return "gone", None
        edited = _timestamp(page, "last_edited_time")
        if page.get("in_trash") or page.get("archived"):
            return "trashed", edited
        return ("archived" if page.get("is_archived") else "live"), edited

    def _page_object(self, page_id: str) -> dict[str, Any] | None:
        """`GET /v1/pages/{id}`; None on 404."""
        try:
            page: dict[str, Any] = self._call(
                "read the postmortem page",
                self._client.pages.retrieve,
                idempotent=True,
                missing=_PAGE_MISSING,
                page_id=page_id,
            )
        except NotionError as error:
            if error.status == 404:
                return None
            raise
        return page

    def restore_page(self, page_id: str) -> None:
        """Take the page out of Notion's trash (`in_trash: false`), as a person could."""
        self._call(
            "restore the postmortem page",
            self._client.pages.update,
            idempotent=True,
            missing=_PAGE_MISSING,
            page_id=page_id,
            in_trash=False,
        )

    def update_properties(self, page_id: str, fields: PostmortemFields) -> None:
        """Rewrite the page's properties from ``fields`` (only those the database has),
        except its label and mark, which the create wrote for good."""
        properties = build_properties(self.schema(), fields, label=False)
        self._call(
            "update the postmortem page",
            self._client.pages.update,
            idempotent=True,
            missing=_PAGE_MISSING,
            page_id=page_id,
            properties=properties,
        )

    # blocks

    def append_blocks(
        self, parent_id: str, blocks: Sequence[Block], *, after: str | None = None
    ) -> list[str]:
        """Append ``blocks`` under ``parent_id`` (after block ``after`` if given), in order.

        Split into as many requests as Notion's limits need; returns the ids of the new
        top-level blocks in order. Not retried: an unanswered append may have landed.
        """
        ids: list[str] = []
        anchor = after
        for chunk in plan_chunks(blocks):
            new_ids = self._append_chunk(parent_id, [p.block for p in chunk], after=anchor)
            for block_id, planned in zip(new_ids, chunk, strict=True):
                if planned.deferred:
                    self.append_blocks(block_id, planned.deferred)
            ids.extend(new_ids)
            anchor = new_ids[-1] if anchor is not None else None
        return ids

    def prepend_block(self, parent_id: str, block: Block) -> str:
        """Insert ``block`` as the first child of ``parent_id``; returns its id.

        ``after`` cannot put a block first, so this uses ``position: {"type": "start"}``.
        Not retried, like every append.
        """
        response = self._call(
            "add a block to the postmortem page",
            self._client.blocks.children.append,
            missing=_PAGE_MISSING,
            block_id=parent_id,
            children=[block],
            position={"type": "start"},
        )
        results = response.get("results", [])
        if not results:
            raise NotionError("Notion's answer to an append lists no block")
        return str(results[0]["id"])

    def _append_chunk(self, parent_id: str, chunk: list[Block], *, after: str | None) -> list[str]:
        """One ``PATCH /v1/blocks/{id}/children``; the ids of the blocks it created."""
        placement: dict[str, Any] = {"after": after} if after else {}
        response = self._call(
            "add blocks to the postmortem page",
            self._client.blocks.children.append,
            missing=_PAGE_MISSING,
            block_id=parent_id,
            children=chunk,
            **placement,
        )
        results = response.get("results", [])
        if len(results) < len(chunk):
            raise NotionError(
                "Notion's answer to an append lists fewer blocks than were sent",
                detail=f"sent {len(chunk)}, got {len(results)}",
            )
        # With ``after``, Notion may also list the siblings that follow the new blocks.
        return [str(block["id"]) for block in results[: len(chunk)]]

    def list_children(self, block_id: str) -> Iterator[Block]:
        """Every child of a block or page, in order, 100 per request."""
        return self._paginate(
            "read the postmortem page",
            self._client.blocks.children.list,
            missing=_PAGE_MISSING,
            block_id=block_id,
        )

    def retrieve_block(self, block_id: str) -> Block:
        """``GET /v1/blocks/{id}``: one block, with its rich text and `has_children`."""
        block: Block = self._call(
            "read the postmortem page",
            self._client.blocks.retrieve,
            idempotent=True,
            missing=_PAGE_MISSING,
            block_id=block_id,
        )
        return block

    def update_block(self, block_id: str, payload: dict[str, Any]) -> None:
        """``PATCH /v1/blocks/{id}`` with ``payload`` as the body, sent as given.

        Uses the client's raw request: its ``blocks.update`` silently drops keys it does not
        know, which would turn a typo into a no-op.
        """
        self._call(
            "update a block of the postmortem page",
            self._client.request,
            idempotent=True,
            missing=_PAGE_MISSING,
            path=f"blocks/{block_id}",
            method="PATCH",
            body=payload,
        )

    def resume_template(self, page_id: str, blocks: Sequence[Block]) -> int:
        """Append the template blocks a page is missing; returns how many were appended.

        For a page adopted after a create or an append that was not answered: its top-level
        children are compared, by type, with the template's first blocks, and only the tail
        is appended. A page whose content differs (someone edited it) is left alone.
        """
        existing = [str(block.get("type")) for block in self.list_children(page_id)]
        expected = [str(block["type"]) for block in blocks]
        if len(existing) >= len(expected):
            return 0
        if existing != expected[: len(existing)]:
            self._log.warning(
                "Notion page %s differs from the template; not completing it", page_id
            )
            return 0
        return len(self.append_blocks(page_id, blocks[len(existing) :]))

    # plumbing

    def _paginate(
        self, action: str, send: Callable[..., Any], *, missing: str, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Every result of a paginated list or query, following ``next_cursor`` lazily."""
        cursor: str | None = None
        while True:
            paging = {"page_size": PAGE_SIZE, **({"start_cursor": cursor} if cursor else {})}
            response = self._call(
                action, send, missing=missing, idempotent=True, **params, **paging
            )
            yield from response.get("results", [])
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    def _call(
        self,
        action: str,
        send: Callable[..., Any],
        *,
        missing: str,
        idempotent: bool = False,
        **params: Any,
    ) -> Any:
        """Run one client call; notion-client and httpx errors become our typed errors.

        A 429 `rate_limited` or 529 `service_overload` means Notion did nothing with the
        request, so it is sent again after `Retry-After`, for up to `MAX_PAUSE_SECONDS`
        in all: a rate limit pauses the work, it doesn't fail it. Page creation waits
        only `CREATE_PAUSE_SECONDS` (a 429 or 529 created nothing, so sending it again is
        safe); past that its caller adopts or retries through the reconciler, so a
        declare never waits a minute for Notion. An `idempotent` call (a read, a listing or
        query, an update) that met a 500, 502 or 503 is sent again `READ_RETRIES` times.
        """
        paused = 0.0
        attempt = 0
        while True:
            if self._pace is not None:
                self._pace.take()
            try:
                answer = send(**params)
                metrics.API_CALLS.labels("notion", action, "ok").inc()
                return answer
            except (NotionClientErrorBase, httpx.TransportError) as error:
                translated = translate_error(error, missing=missing)
                status = str(translated.status or "connection_error")
                metrics.API_CALLS.labels("notion", action, status).inc()
                pause = _pause_for(translated, idempotent, attempt)
                attempt += 1
                longest = CREATE_PAUSE_SECONDS if action == CREATE_ACTION else MAX_PAUSE_SECONDS
                if pause is None or paused + pause > longest:
                    self._log.debug(
                        "Notion: couldn't %s: %s", action, translated.detail or translated
                    )
                    raise translated from error
            self._log.warning(
                "Notion turned us away (HTTP %s); pausing %.1f s before we %s",
                translated.status,
                pause,
                action,
            )
            self._sleep(pause)
            paused += pause


def _build_client(token: str, base_url: str, timeout_s: float, logger: logging.Logger) -> Client:
    """The official client, logging through our logger.

    ``log_level`` is the logger's own level: the client calls ``setLevel`` with it, so this
    keeps whatever level logging configuration gave that logger (NOTSET defers to parents).
    """
    return Client(
        auth=token,
        base_url=base_url.rstrip("/"),
        timeout_ms=int(timeout_s * 1000),
        logger=logger,
        log_level=logger.level,
        retry=False,
    )


def _page(response: dict[str, Any]) -> NotionPage:
    """Our value for a page object: the id and the URL Notion reports (never built by us)."""
    return NotionPage(id=str(response["id"]), url=str(response.get("url", "")))


def _is_live(page: dict[str, Any]) -> bool:
    """Not in the trash (`in_trash`, or its deprecated alias `archived`) and not archived
    (`is_archived`): a person put it away, so the bot neither adopts it nor writes to it."""
    return not (page.get("archived") or page.get("in_trash") or page.get("is_archived"))


def _property_links(page: dict[str, Any], name: str) -> set[str]:
    """The links of a rich_text property's items (`href`, or the request shape's link)."""
    value = (page.get("properties") or {}).get(name) or {}
    links = set()
    for item in value.get("rich_text") or []:
        url = item.get("href") or ((item.get("text") or {}).get("link") or {}).get("url")
        if url:
            links.add(str(url))
    return links


def _made_by(
    page: dict[str, Any], prop: str, marks: Collection[str], since: datetime | None
) -> bool:
    """Whether one of the attempts `marks` made the page (see `find_postmortem`)."""
    links = _property_links(page, prop)
    if links & {mark_url(mark) for mark in marks}:
        return True
    if since is None or links:
        return False
    created = _timestamp(page, "created_time")
    return created is not None and created >= since


def _timestamp(page: dict[str, Any], key: str) -> datetime | None:
    """One of a page object's ISO 8601 times (`created_time`, `last_edited_time`)."""
    raw = str(page.get(key) or "")
    try:
        created = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def _property_text(page: dict[str, Any], name: str) -> str:
    """The plain text of a rich_text property of a page object."""
    value = (page.get("properties") or {}).get(name) or {}
    return "".join(nb.item_plain_text(item) for item in value.get("rich_text") or [])
