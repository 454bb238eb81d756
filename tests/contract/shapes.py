"""The contract fixtures, and the one check every fake response goes through.

`fixtures/` holds Slack and Notion payloads written by hand in the shapes their public
API references document (not copied from any project). `drift(actual, documented)`
lists what a fake's answer lacks or types differently; each test names, in an
explicit allowlist, the documented fields its fake does not model, so a fake that
drops or retypes a field the bot may read fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    """`slack/users_info`, `notion/page`, …"""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def drift(actual: Any, documented: Any, path: str = "$") -> list[str]:
    """Documented paths `actual` lacks or holds with another JSON type (`null` in the
    documentation means "may be null": anything passes)."""
    if documented is None:
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {type(actual).__name__}, documented an object"]
        found: list[str] = []
        for key, value in documented.items():
            if key not in actual:
                found.append(f"{path}.{key}")
            else:
                found += drift(actual[key], value, f"{path}.{key}")
        return found
    if isinstance(documented, list):
        if not isinstance(actual, list):
            return [f"{path}: {type(actual).__name__}, documented a list"]
        if documented and actual:
            return drift(actual[0], documented[0], f"{path}[0]")
        return []
    if isinstance(documented, bool):
        same = isinstance(actual, bool)
    elif isinstance(documented, int | float):
        same = isinstance(actual, int | float) and not isinstance(actual, bool)
    else:
        same = isinstance(actual, type(documented))
    return (
        [] if same else [f"{path}: {type(actual).__name__}, documented {type(documented).__name__}"]
    )


def assert_matches(
    actual: Any, documented: Any, not_modelled: frozenset[str] = frozenset()
) -> None:
    """`actual` has every documented field but the ones the fake says it does not model."""
    found = drift(actual, documented)
    unexpected = [p for p in found if p not in not_modelled]
    assert unexpected == [], f"the fake drifts from the documented shape: {unexpected}"
    stale = sorted(set(not_modelled) - set(found))
    assert stale == [], f"modelled now, take them off the allowlist: {stale}"
