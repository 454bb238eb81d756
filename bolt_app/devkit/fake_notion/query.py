"""`POST /v1/data_sources/{id}/query` filters and sorts, and cursor pagination.

Filters are compiled once into predicates over page objects (response form). Supported:
property filters for text (`title`, `rich_text`, `url`, `email`, `phone_number`),
`select`, `status`, `multi_select`, `number`, `checkbox`, `date`; `timestamp` filters on
`created_time`/`last_edited_time`; `and`/`or` compounds up to Notion's two levels of
nesting. A filter whose condition type doesn't match the property type is refused as
Notion refuses it ("database property X does not match filter Y").

Cursors are the id of the next result, as Notion's are; an unknown cursor is a 400.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bolt_app.devkit.fake_notion.common import JSON, body_error, shown, too_long, validation_error
from bolt_app.devkit.fake_notion.props import PagePredicate, Schema, find_property, value_text

T = TypeVar("T")

MAX_PAGE_SIZE = 100
MAX_FILTER_NESTING = 2
TEXT_FILTERS = frozenset({"title", "rich_text", "url", "email", "phone_number"})
_TEXT_OPS: dict[str, Callable[[str, str], bool]] = {
    "equals": lambda have, want: have == want,
    "does_not_equal": lambda have, want: have != want,
    "contains": lambda have, want: want.lower() in have.lower(),
    "does_not_contain": lambda have, want: want.lower() not in have.lower(),
    "starts_with": lambda have, want: have.lower().startswith(want.lower()),
    "ends_with": lambda have, want: have.lower().endswith(want.lower()),
}
_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda have, want: have == want,
    "does_not_equal": lambda have, want: have != want,
    "greater_than": lambda have, want: have > want,
    "less_than": lambda have, want: have < want,
    "greater_than_or_equal_to": lambda have, want: have >= want,
    "less_than_or_equal_to": lambda have, want: have <= want,
    "before": lambda have, want: have < want,
    "after": lambda have, want: have > want,
    "on_or_before": lambda have, want: have <= want,
    "on_or_after": lambda have, want: have >= want,
}


def compile_filter(
    schema: Schema, raw: Any, path: str = "body.filter", depth: int = 0
) -> PagePredicate:
    """Turn a Notion filter object into a predicate over page objects."""
    if raw is None:
        return lambda page: True
    if not isinstance(raw, dict):
        raise body_error(f"{path} should be an object, instead was `{shown(raw)}`.")
    for word, combine in (("and", all), ("or", any)):
        if word in raw:
            return _compound(schema, raw[word], f"{path}.{word}", depth, combine)
    if "timestamp" in raw:
        return _timestamp_filter(raw, path)
    if "property" in raw:
        return _property_filter(schema, raw, path)
    raise body_error(
        f"{path} should be a property, timestamp, `and` or `or` filter, instead was `{shown(raw)}`."
    )


def _compound(
    schema: Schema, raw: Any, path: str, depth: int, combine: Callable[[Any], bool]
) -> PagePredicate:
    if depth >= MAX_FILTER_NESTING:
        raise body_error(
            f"{path} exceeds the maximum filter nesting depth of {MAX_FILTER_NESTING}."
        )
    if not isinstance(raw, list):
        raise body_error(f"{path} should be an array, instead was `{shown(raw)}`.")
    parts = [compile_filter(schema, item, f"{path}[{i}]", depth + 1) for i, item in enumerate(raw)]
    return lambda page: combine(part(page) for part in parts)


def _property_filter(schema: Schema, raw: JSON, path: str) -> PagePredicate:
    key = str(raw["property"])
    prop = find_property(schema, key)
    if prop is None:
        raise validation_error(f"Could not find property with name or id: {key}")
    condition_type = next((k for k in raw if k not in ("property", "type")), None)
    if condition_type is None:
        raise body_error(f"{path} should include a filter condition, instead was `{shown(raw)}`.")
    kind = prop["type"]
    if condition_type != kind:
        raise validation_error(f"database property {kind} does not match filter {condition_type}")
    name = prop["name"]
    test = _condition(kind, raw[condition_type], f"{path}.{condition_type}")
    return lambda page: test(page["properties"].get(name, {"type": kind, kind: None}))


def _single_condition(raw: Any, path: str) -> tuple[str, Any]:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise body_error(f"{path} should have exactly one condition, instead was `{shown(raw)}`.")
    op, operand = next(iter(raw.items()))
    return str(op), operand


def _condition(kind: str, raw: Any, path: str) -> Callable[[JSON], bool]:
    op, operand = _single_condition(raw, path)
    if op in ("is_empty", "is_not_empty"):
        wanted_empty = op == "is_empty"
        return lambda value: _is_empty(value) == wanted_empty
    if kind in TEXT_FILTERS and op in _TEXT_OPS:
        return _text_test(op, _operand(operand, str, f"{path}.{op}"))
    if kind in ("select", "status") and op in ("equals", "does_not_equal"):
        return _text_test(op, _operand(operand, str, f"{path}.{op}"))
    if kind == "multi_select" and op in ("contains", "does_not_contain"):
        return _multi_test(op == "contains", _operand(operand, str, f"{path}.{op}"))
    if kind == "checkbox" and op in ("equals", "does_not_equal"):
        wanted = _operand(operand, bool, f"{path}.{op}")
        return lambda value: (bool(value.get("checkbox")) == wanted) == (op == "equals")
    if kind in ("number", "date") and op in _ORDER_OPS:
        return _ordered_test(op, operand, f"{path}.{op}")
    raise body_error(f"{path}.{op} is not a supported {kind} filter condition.")


def _operand(value: Any, kind: type, path: str) -> Any:
    if not isinstance(value, kind):
        raise body_error(f"{path} should be a {kind.__name__}, instead was `{shown(value)}`.")
    return value


def _text_test(op: str, wanted: str) -> Callable[[JSON], bool]:
    compare = _TEXT_OPS[op]
    return lambda value: compare(value_text(value) or "", wanted)


def _multi_test(contains: bool, wanted: str) -> Callable[[JSON], bool]:
    def test(value: JSON) -> bool:
        names = {option["name"] for option in value.get("multi_select") or []}
        return (wanted in names) == contains

    return test


def _ordered_test(op: str, operand: Any, path: str) -> Callable[[JSON], bool]:
    if not isinstance(operand, int | float | str) or isinstance(operand, bool):
        raise body_error(
            f"{path} should be a number or date string, instead was `{shown(operand)}`."
        )
    compare = _ORDER_OPS[op]

    def test(value: JSON) -> bool:
        have = _comparable(value)
        return have is not None and type(have) is type(operand) and compare(have, operand)

    return test


def _comparable(value: JSON) -> Any:
    kind = value.get("type")
    if kind == "number":
        return value.get("number")
    if kind == "date":
        return (value.get("date") or {}).get("start")
    return value.get(str(kind))


def _is_empty(value: JSON) -> bool:
    raw = value.get(str(value.get("type")))
    return raw is None or raw == [] or raw == ""


def _timestamp_filter(raw: JSON, path: str) -> PagePredicate:
    field = raw["timestamp"]
    if field not in ("created_time", "last_edited_time"):
        raise body_error(
            f"{path}.timestamp should be `created_time` or `last_edited_time`, "
            f"instead was `{shown(field)}`."
        )
    op, operand = _single_condition(raw.get(field), f"{path}.{field}")
    if op not in _ORDER_OPS or not isinstance(operand, str):
        raise body_error(f"{path}.{field}.{op} is not a supported timestamp filter condition.")
    compare = _ORDER_OPS[op]
    return lambda page: compare(page[field], operand)


def sort_pages(pages: list[JSON], raw: Any, schema: Schema, path: str = "body.sorts") -> list[JSON]:
    """Order pages by `sorts` (first sort wins); unsorted order is creation order.

    Select and status values sort by their option's position in the schema, as in Notion,
    not alphabetically; empty values go last.
    """
    if raw is None:
        return pages
    if not isinstance(raw, list):
        raise body_error(f"{path} should be an array, instead was `{shown(raw)}`.")
    ordered = list(pages)
    for i, sort in reversed(list(enumerate(raw))):
        key, descending = _sort_key(sort, schema, f"{path}[{i}]")
        present = [p for p in ordered if key(p) is not None]
        missing = [p for p in ordered if key(p) is None]
        ordered = sorted(present, key=key, reverse=descending) + missing
    return ordered


def _sort_key(raw: Any, schema: Schema, path: str) -> tuple[Callable[[JSON], Any], bool]:
    if not isinstance(raw, dict) or raw.get("direction") not in ("ascending", "descending"):
        raise body_error(
            f"{path}.direction should be `ascending` or `descending`, instead was `{shown(raw)}`."
        )
    descending = raw["direction"] == "descending"
    if raw.get("timestamp") in ("created_time", "last_edited_time"):
        stamp = str(raw["timestamp"])
        return (lambda page: page[stamp]), descending
    prop = find_property(schema, str(raw.get("property")))
    if prop is None:
        raise validation_error(
            f"Could not find sort property with name or id: {raw.get('property')}"
        )
    name, kind = prop["name"], prop["type"]
    if kind in ("select", "status"):
        rank = {option["id"]: i for i, option in enumerate(prop[kind]["options"])}
        return (lambda page: _option_rank(page["properties"][name], rank)), descending
    if kind == "number":
        return (lambda page: _comparable(page["properties"][name])), descending
    return (lambda page: value_text(page["properties"][name])), descending


def _option_rank(value: JSON, rank: dict[str, int]) -> int | None:
    chosen = value.get(str(value.get("type")))
    return rank.get(chosen["id"], len(rank)) if chosen else None


def page_size(raw: Any, path: str) -> int:
    """Validate `page_size` (1..100, default 100) from a body or query string."""
    if raw is None:
        return MAX_PAGE_SIZE
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise body_error(f"{path} should be a positive integer, instead was `{shown(raw)}`.")
    if raw > MAX_PAGE_SIZE:
        raise too_long(path, MAX_PAGE_SIZE, raw)
    return raw


def paginate(
    items: Sequence[T], ident: Callable[[T], str], cursor: Any, size: int, path: str
) -> tuple[list[T], str | None]:
    """One page of `items` starting at `cursor` (an item id) and the next cursor, if any."""
    start = 0
    if cursor is not None:
        ids = [ident(item) for item in items]
        if cursor not in ids:
            raise body_error(f"{path} should be a valid cursor, instead was `{shown(cursor)}`.")
        start = ids.index(cursor)
    chunk = list(items[start : start + size])
    following = items[start + size] if start + size < len(items) else None
    return chunk, (ident(following) if following is not None else None)
