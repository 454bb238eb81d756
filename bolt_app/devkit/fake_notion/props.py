"""Data source schemas, page property values, and query filters/sorts.

A data source's `properties` is its schema (name -> {id, name, type, <type>: config}); a
page's `properties` are values in that schema. Both are stored in response form so reads
are plain copies. Validation follows Notion's observable behaviour:

* unknown property name -> 400 "<name> is not a property that exists.";
* a value of the wrong type -> 400 "<name> is expected to be <type>.";
* a `select`/`multi_select` option that doesn't exist yet is added to the schema, while a
  `status` option can't be created through the API (400);
* filters naming an unknown property -> 400 "Could not find property with name or id".
"""

from __future__ import annotations

import copy
import secrets
import string
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from bolt_app.devkit.fake_notion.block_schema import (
    MAX_ARRAY,
    check_color,
    parse_rich_text,
    plain_text_of,
)
from bolt_app.devkit.fake_notion.common import (
    JSON,
    body_error,
    js_length,
    partial_user,
    shown,
    too_long,
    validation_error,
)

Schema = dict[str, JSON]
PagePredicate = Callable[[JSON], bool]

TEXT_TYPES = frozenset({"title", "rich_text"})
STRING_TYPES = {"url": 2000, "email": 200, "phone_number": 200}
READ_ONLY_TYPES = frozenset({"created_time", "last_edited_time", "created_by", "last_edited_by"})
SCHEMA_TYPES = (
    TEXT_TYPES
    | set(STRING_TYPES)
    | READ_ONLY_TYPES
    | {"number", "select", "multi_select", "status", "date", "checkbox", "people", "files"}
)
DEFAULT_STATUS_OPTIONS = (("Not started", "default"), ("In progress", "blue"), ("Done", "green"))
_ID_ALPHABET = string.ascii_letters + string.digits + ":;<=>?@[]^_`{|}"


# --------------------------------------------------------------------------- schema


def property_id() -> str:
    """A short property id in Notion's style (four URL-encoded characters)."""
    return quote("".join(secrets.choice(_ID_ALPHABET) for _ in range(4)), safe="")


def parse_schema(raw: Any, path: str) -> Schema:
    """Validate a property-configuration map (as in `initial_data_source.properties`).

    A schema without a title property gets Notion's default "Name" title column.
    """
    if not isinstance(raw, dict):
        raise body_error(f"{path} should be an object, instead was `{shown(raw)}`.")
    schema = {
        name: _schema_property(name, config, f"{path}.{name}") for name, config in raw.items()
    }
    titles = [name for name, prop in schema.items() if prop["type"] == "title"]
    if len(titles) > 1:
        raise validation_error("A data source can have only one title property.")
    if not titles:
        schema = {"Name": _schema_property("Name", {"title": {}}, f"{path}.Name"), **schema}
    return schema


def _schema_property(name: str, config: Any, path: str) -> JSON:
    if not isinstance(config, dict):
        raise body_error(f"{path} should be an object, instead was `{shown(config)}`.")
    kind = config.get("type") or next((k for k in config if k in SCHEMA_TYPES), None)
    if kind not in SCHEMA_TYPES:
        raise body_error(
            f"{path} should declare a supported property type, instead was `{shown(config)}`."
        )
    prop: JSON = {
        "id": "title" if kind == "title" else property_id(),
        "name": name,
        "type": kind,
        "description": config.get("description"),
    }
    prop[kind] = _type_config(str(kind), config.get(kind) or {}, f"{path}.{kind}")
    return prop


def _type_config(kind: str, config: JSON, path: str) -> JSON:
    if kind in ("select", "multi_select"):
        return {
            "options": [
                _option(o, f"{path}.options[{i}]") for i, o in enumerate(config.get("options", []))
            ]
        }
    if kind == "status":
        return _status_config(config, path)
    if kind == "number":
        return {"format": config.get("format", "number")}
    return {}


def _option(raw: Any, path: str) -> JSON:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise body_error(f"{path}.name should be a string, instead was `{shown(raw)}`.")
    return new_option(raw["name"], raw.get("color", "default"), path)


def new_option(name: str, color: Any, path: str) -> JSON:
    """A select option as Notion stores it; names can't contain commas."""
    if "," in name:
        raise validation_error(f"Select option names cannot contain commas: {name!r}.")
    return {
        "id": property_id(),
        "name": name,
        "color": check_color(color, f"{path}.color"),
        "description": None,
    }


def _status_config(config: JSON, path: str) -> JSON:
    given = config.get("options")
    options = (
        [_option(o, f"{path}.options[{i}]") for i, o in enumerate(given)]
        if given
        else [new_option(name, color, path) for name, color in DEFAULT_STATUS_OPTIONS]
    )
    group = {
        "id": property_id(),
        "name": "All",
        "color": "gray",
        "option_ids": [o["id"] for o in options],
    }
    return {"options": options, "groups": [group]}


def find_property(schema: Schema, key: str) -> JSON | None:
    """A schema property by name or by id (ids may arrive URL-encoded or not)."""
    if key in schema:
        return schema[key]
    return next((p for p in schema.values() if key in (p["id"], unquote(p["id"]))), None)


# --------------------------------------------------------------------------- values


def parse_values(schema: Schema, raw: Any, path: str) -> dict[str, JSON]:
    """Validate page property values against `schema`, adding new select options to it.

    The caller passes a copy of the schema and commits it only if the request succeeds.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise body_error(f"{path} should be an object, instead was `{shown(raw)}`.")
    values: dict[str, JSON] = {}
    for key, value in raw.items():
        prop = find_property(schema, key)
        if prop is None:
            raise validation_error(f"{key} is not a property that exists.")
        values[prop["name"]] = _value(prop, value, f"{path}.{key}")
    return values


def _value(prop: JSON, raw: Any, path: str) -> JSON:
    kind, name = prop["type"], prop["name"]
    if kind in READ_ONLY_TYPES:
        raise validation_error(f"{name} is a read-only property and cannot be set.")
    if isinstance(raw, list) and kind in TEXT_TYPES | {"multi_select", "people"}:
        raw = {kind: raw}
    if not isinstance(raw, dict) or kind not in raw:
        raise validation_error(f"{name} is expected to be {kind}.")
    return {"id": prop["id"], "type": kind, kind: _typed_value(prop, raw[kind], f"{path}.{kind}")}


def _typed_value(prop: JSON, raw: Any, path: str) -> Any:
    kind = prop["type"]
    if kind in TEXT_TYPES:
        return parse_rich_text(raw, path)
    if kind in STRING_TYPES:
        return _string_value(raw, path, STRING_TYPES[kind])
    if kind == "number":
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int | float)):
            raise validation_error(f"{prop['name']} is expected to be number.")
        return raw
    if kind == "checkbox":
        if not isinstance(raw, bool):
            raise validation_error(f"{prop['name']} is expected to be checkbox.")
        return raw
    return _structured_value(prop, raw, path)


def _structured_value(prop: JSON, raw: Any, path: str) -> Any:
    kind = prop["type"]
    if kind in ("select", "status"):
        return None if raw is None else _choose(prop, raw, path)
    if kind == "multi_select":
        return [_choose(prop, item, f"{path}[{i}]") for i, item in enumerate(_array(raw, path))]
    if kind == "people":
        return [
            partial_user(_person(item, f"{path}[{i}]")) for i, item in enumerate(_array(raw, path))
        ]
    if kind == "date":
        return None if raw is None else _date(raw, path)
    if kind == "files":
        return copy.deepcopy(_array(raw, path))
    raise validation_error(f"{prop['name']} is expected to be {kind}.")


def _array(raw: Any, path: str) -> list[Any]:
    if not isinstance(raw, list):
        raise body_error(f"{path} should be an array, instead was `{shown(raw)}`.")
    if len(raw) > MAX_ARRAY:
        raise too_long(f"{path}.length", MAX_ARRAY, len(raw))
    return raw


def _string_value(raw: Any, path: str, limit: int) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise body_error(f"{path} should be a string, instead was `{shown(raw)}`.")
    if js_length(raw) > limit:
        raise too_long(f"{path}.length", limit, js_length(raw))
    return raw


def _person(raw: Any, path: str) -> str:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise body_error(f"{path}.id should be a string, instead was `{shown(raw)}`.")
    return str(raw["id"])


def _choose(prop: JSON, raw: Any, path: str) -> JSON:
    """Pick (or, for select kinds, create) the option a value names."""
    if not isinstance(raw, dict) or not (isinstance(raw.get("name"), str) or "id" in raw):
        raise body_error(
            f"{path} should be an object with a name or id, instead was `{shown(raw)}`."
        )
    kind = prop["type"]
    options: list[JSON] = prop[kind]["options"]
    key, wanted = ("id", raw["id"]) if "id" in raw else ("name", raw["name"])
    option = next((o for o in options if o[key] == wanted), None)
    if option is None:
        option = _missing_option(prop, key, str(wanted), raw, path)
    return {"id": option["id"], "name": option["name"], "color": option["color"]}


def _missing_option(prop: JSON, key: str, wanted: str, raw: JSON, path: str) -> JSON:
    kind = prop["type"]
    if kind == "status":
        raise validation_error(f'Invalid status option. Status option "{wanted}" does not exist.')
    if key == "id":
        raise validation_error(f"Invalid select option id {wanted!r} for property {prop['name']}.")
    option = new_option(wanted, raw.get("color", "default"), f"{path}.color")
    prop[kind]["options"].append(option)
    return option


def _date(raw: Any, path: str) -> JSON:
    if not isinstance(raw, dict) or not isinstance(raw.get("start"), str):
        raise body_error(f"{path}.start should be defined, instead was `{shown(raw)}`.")
    for part in ("start", "end"):
        if raw.get(part) is not None and not _is_iso(raw[part]):
            raise body_error(
                f"{path}.{part} should be a valid ISO 8601 date string, "
                f"instead was `{shown(raw[part])}`."
            )
    return {"start": raw["start"], "end": raw.get("end"), "time_zone": raw.get("time_zone")}


def _is_iso(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def default_values(schema: Schema) -> dict[str, JSON]:
    """The value every property has on a page that never set it."""
    return {
        name: {"id": p["id"], "type": p["type"], p["type"]: _empty(p)} for name, p in schema.items()
    }


def _empty(prop: JSON) -> Any:
    kind = prop["type"]
    if kind in TEXT_TYPES | {"multi_select", "people", "files"}:
        return []
    if kind == "checkbox":
        return False
    if kind == "status" and prop["status"]["options"]:
        first = prop["status"]["options"][0]
        return {"id": first["id"], "name": first["name"], "color": first["color"]}
    return None


def title_text(properties: dict[str, JSON]) -> str:
    """The plain text of a page's title property."""
    for value in properties.values():
        if value.get("type") == "title":
            return plain_text_of(value["title"])
    return ""


def value_text(value: JSON) -> str | None:
    """A property value flattened for comparison: text, option name, date start, number."""
    kind = value.get("type")
    raw = value.get(str(kind))
    if kind in TEXT_TYPES:
        return plain_text_of(raw or [])
    if kind in ("select", "status"):
        return raw["name"] if raw else None
    if kind == "date":
        return raw["start"] if raw else None
    return None if raw is None else str(raw)
