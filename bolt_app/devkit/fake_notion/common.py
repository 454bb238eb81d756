"""Small shared pieces of FakeNotion: the error type, ids, times, and message formatting.

Every failure below the HTTP layer is a `NotionError`, raised where the rule lives and
turned into Notion's error envelope in exactly one place (the server). Messages copy the
shape of Notion's own validator (``body failed validation: <path> should be ≤ `100`,
instead was `101`.``) so an app that logs them reads the same text as in production.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]
Clock = Callable[[], float]

#: Notion's "Archived/trashed block" refusal, used for pages and blocks alike.
ARCHIVED_MESSAGE = "Can't edit block that is archived. You must unarchive the block before editing."

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_SHOWN_LIMIT = 55


class NotionError(Exception):
    """An API error with Notion's status, code and message, raised anywhere in the fake."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self, request_id: str) -> JSON:
        """The JSON envelope Notion sends: object, status, code, message, request_id."""
        return {
            "object": "error",
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        }


def validation_error(message: str) -> NotionError:
    """HTTP 400 `validation_error` with a free-form message."""
    return NotionError(400, "validation_error", message)


def body_error(detail: str) -> NotionError:
    """HTTP 400 `validation_error` worded like Notion's request-schema validator."""
    return validation_error(f"body failed validation: {detail}")


def too_long(path: str, limit: int, actual: int) -> NotionError:
    """The "<path> should be ≤ `limit`, instead was `actual`." message Notion uses for sizes."""
    return body_error(f"{path} should be ≤ `{limit}`, instead was `{actual}`.")


def not_present(path: str, value: Any) -> NotionError:
    """Notion's wording when a field is not allowed here (e.g. children nested too deep)."""
    return body_error(f"{path} should be not present, instead was `{shown(value)}`.")


def undefined(path: str) -> NotionError:
    """Notion's wording for a required field that is missing."""
    return body_error(f"{path} should be defined, instead was `undefined`.")


def not_found(kind: str, object_id: str) -> NotionError:
    """HTTP 404 `object_not_found`, the same answer Notion gives for missing or unshared."""
    return NotionError(
        404,
        "object_not_found",
        f"Could not find {kind} with ID: {object_id}. "
        "Make sure the relevant pages and databases are shared with your integration.",
    )


def shown(value: Any) -> str:
    """A value as Notion quotes it in messages: compact JSON, cut after ~55 characters."""
    if value is None:
        return "undefined"
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= _SHOWN_LIMIT else text[:_SHOWN_LIMIT] + "..."


def js_length(text: str) -> int:
    """String length as Notion's (JavaScript) validator counts it: UTF-16 code units.

    An emoji outside the BMP counts as 2, so a 2,000-code-point string can still be
    rejected; an app that splits text at 2,000 Python characters must count this way.
    """
    return len(text.encode("utf-16-le")) // 2


def new_id() -> str:
    """A fresh object id, formatted as Notion returns ids (UUID with dashes)."""
    return str(uuid.uuid4())


def parse_id(raw: Any) -> str | None:
    """Normalise an id given with or without dashes, as Notion accepts both; None if invalid."""
    if not isinstance(raw, str):
        return None
    compact = raw.replace("-", "").lower()
    if not _HEX32.match(compact):
        return None
    return f"{compact[:8]}-{compact[8:12]}-{compact[12:16]}-{compact[16:20]}-{compact[20:]}"


def path_id(raw: str, name: str) -> str:
    """An id from the URL path, or the 400 Notion answers for a malformed one."""
    parsed = parse_id(raw)
    if parsed is None:
        raise validation_error(
            f"path failed validation: path.{name} should be a valid uuid, "
            f"instead was `{shown(raw)}`."
        )
    return parsed


def body_id(raw: Any, path: str) -> str:
    """An id from the request body, or the schema error for a malformed one."""
    parsed = parse_id(raw)
    if parsed is None:
        if raw is None:
            raise undefined(path)
        raise body_error(f"{path} should be a valid uuid, instead was `{shown(raw)}`.")
    return parsed


def compact_id(object_id: str) -> str:
    """The 32-hex form Notion uses inside URLs."""
    return object_id.replace("-", "")


def iso_minute(clock: Clock | None = None) -> str:
    """Now as Notion stamps objects: ISO 8601 UTC, rounded down to the minute.

    Notion really does truncate `created_time` to the minute; code that relies on finer
    timestamps (ordering, "created after my attempt started") breaks in production.
    """
    seconds = (clock or time.time)()
    stamp = datetime.fromtimestamp(seconds - seconds % 60, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:00.000Z")


def partial_user(user_id: str) -> JSON:
    """The `{"object": "user", "id": ...}` stub Notion puts in created_by/last_edited_by."""
    return {"object": "user", "id": user_id}
