"""`python -m bolt_app notion-setup --parent <page>` against FakeNotion."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bolt_app.adapters.notion import NotionGateway
from bolt_app.cli import notion_setup
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import NOTION_TOKEN


@pytest.fixture
def notion() -> Iterator[FakeNotion]:
    with FakeNotion() as fake:
        yield fake


def setup(notion: FakeNotion, parent: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NOTION_"))}
    env |= {"NOTION_TOKEN": NOTION_TOKEN, "NOTION_API_BASE_URL": notion.base_url}
    return subprocess.run(
        [sys.executable, "-m", "bolt_app", "notion-setup", "--parent", parent],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_creates_a_database_the_bot_accepts_and_prints_its_id(
    notion: FakeNotion, tmp_path: Path
) -> None:
    parent = notion.add_page("Incidents")
    done = setup(
        notion, f"https://www.notion.so/acme/Incidents-{parent.replace('-', '')}", tmp_path
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("NOTION_POSTMORTEM_"))
    database_id = line.split("=", 1)[1]
    gateway = NotionGateway(token=NOTION_TOKEN, base_url=notion.base_url, database_id=database_id)
    schema = gateway.schema()
    gateway.close()
    assert (schema.title, schema.incident) == ("Name", "Incident")
    assert (schema.severity, schema.status, schema.declared, schema.channel) == (
        "Severity",
        "Status",
        "Declared",
        "Channel",
    )
    options = notion.data_source(schema.data_source_id)["properties"]["Status"]["select"]
    assert [o["name"] for o in options["options"]] == [
        "Active",
        "Mitigated",
        "Resolved",
        "Postmortem",
        "Done",
        "Canceled",
    ]


def test_an_unknown_parent_says_how_to_share_it(notion: FakeNotion, tmp_path: Path) -> None:
    done = setup(notion, "0" * 32, tmp_path)
    assert done.returncode == 1
    assert "Connections, add the integration" in done.stderr


def test_without_a_notion_token_it_names_the_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NOTION_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bolt_app", "notion-setup", "--parent", "0" * 32],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "firebreak: NOTION_TOKEN is missing: expected a Notion integration token starting with"
        " 'ntn_' or 'secret_'"
    )


def test_page_ids_are_read_from_ids_and_urls() -> None:
    raw = "0123456789abcdef0123456789abcdef"
    dashed = "01234567-89ab-cdef-0123-456789abcdef"
    assert notion_setup.page_id(dashed) == raw
    assert notion_setup.page_id(f"https://www.notion.so/Incidents-{raw}?pvs=4") == raw
    with pytest.raises(argparse.ArgumentTypeError):
        notion_setup.page_id("not-a-page")


def test_an_overloaded_notion_is_waited_out_and_the_database_made_once(
    notion: FakeNotion, tmp_path: Path
) -> None:
    """529 `service_overload` means Notion did nothing: wait Retry-After, try again."""
    parent = notion.add_page("Incidents")
    notion.inject("databases.create", status=529, retry_after=1)
    done = setup(notion, parent, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Notion is overloaded; trying again in 1 s" in done.stderr
    assert [c.status for c in notion.calls_to("databases.create")] == [529, 200]
