"""Listeners call services only: never the store or the Slack and Notion gateways.

The import contract (`lint-imports`) keeps listeners from importing storage internals or
the adapters' clients; this keeps them from reaching past the services through the
`Services` container's `store`, `slack` and `notion` fields.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bolt_app.listeners

LISTENERS = Path(bolt_app.listeners.__file__).parent
FORBIDDEN = {"store", "slack", "notion"}


def reaches_past_services(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in FORBIDDEN
            and isinstance(node.value, ast.Name)
            and node.value.id == "services"
        ):
            found.append(f"{path.name}:{node.lineno}: services.{node.attr}")
    return found


def test_no_listener_uses_the_store_or_a_gateway() -> None:
    modules = sorted(LISTENERS.glob("*.py"))
    assert len(modules) > 5
    assert [hit for path in modules for hit in reaches_past_services(path)] == []


def test_the_check_would_catch_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f(services):\n    return services.store.get_incident(1)\n")
    assert reaches_past_services(bad) == ["bad.py:2: services.store"]
