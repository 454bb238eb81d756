"""`python -m bolt_app check` against the fakes: all good, a scope missing, a property missing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bolt_app.adapters.slack import BOT_SCOPES
from bolt_app.cli import check
from bolt_app.devkit.fake_notion.fake import FakeNotion, default_postmortem_schema
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment
from bolt_app.runtime.config import Settings, load_settings


@dataclass
class Rig:
    slack: FakeSlack
    notion: FakeNotion
    env: dict[str, str]

    def run(self, **overrides: str) -> tuple[int, str]:
        settings: Settings = load_settings({**self.env, **overrides}, dotenv_path=None)
        out = io.StringIO()
        return check.report(settings, out), out.getvalue()


@pytest.fixture
def rig(store_url: str) -> Iterator[Rig]:
    with FakeSlack() as slack, FakeNotion() as notion:
        database_id, _ = notion.add_database()
        yield Rig(slack, notion, bot_environment(slack, notion.base_url, database_id, store_url))


def marks(output: str) -> list[str]:
    return [line[0] for line in output.splitlines() if not line.startswith(" ")]


def test_a_ready_deployment_passes_every_check(rig: Rig) -> None:
    status, output = rig.run()
    assert status == 0, output
    assert marks(output) == [check.OK] * 7, output
    assert "✓ Slack events: subscribe to pin_added, message.channels, message.groups" in output
    assert "fix:" not in output
    assert rig.slack.bot_token not in output and rig.slack.app_token not in output


def test_a_missing_scope_fails_with_the_fix(rig: Rig) -> None:
    rig.slack.set_scopes(set(BOT_SCOPES) - {"bookmarks:read"})
    status, output = rig.run()
    assert status == 1
    line = next(line for line in output.splitlines() if line.startswith(check.FAILED))
    assert line.startswith("✗ Slack bot scopes: missing bookmarks:read")
    assert "add the bookmarks:read scope" in output and "reinstall the app" in output


def test_events_without_their_scope_fail(rig: Rig) -> None:
    rig.slack.set_scopes(set(BOT_SCOPES) - {"groups:history"})
    status, output = rig.run()
    assert status == 1
    assert "✗ Slack events: Slack can't deliver message.groups without their scopes" in output


def test_a_missing_incident_property_fails_and_optional_ones_warn(rig: Rig) -> None:
    schema = default_postmortem_schema()
    del schema["Incident"], schema["Channel"]
    database_id, _ = rig.notion.add_database(properties=schema)
    status, output = rig.run(NOTION_POSTMORTEM_DATABASE_ID=database_id)
    assert status == 1
    assert '✗ Notion postmortem database: the postmortem database has no "Incident"' in output
    assert 'add a Text property named "Incident"' in output

    schema = default_postmortem_schema()
    del schema["Channel"]
    database_id, _ = rig.notion.add_database(properties=schema)
    status, output = rig.run(NOTION_POSTMORTEM_DATABASE_ID=database_id)
    assert status == 0, output
    assert '! Notion property "Channel": missing or not a URL property' in output


def test_bad_tokens_and_an_unshared_database_each_say_what_to_do(rig: Rig) -> None:
    status, output = rig.run(
        SLACK_BOT_TOKEN="xoxb-wrong",
        SLACK_APP_TOKEN="xapp-wrong",
        NOTION_POSTMORTEM_DATABASE_ID="0" * 32,
    )
    assert status == 1
    assert marks(output).count(check.FAILED) == 3, output
    assert "into SLACK_BOT_TOKEN" in output
    assert "connections:write" in output
    assert "Connections, add the integration" in output


def test_a_database_without_migrations_warns_and_a_broken_url_fails(
    rig: Rig, tmp_path: os.PathLike[str]
) -> None:
    status, output = rig.run(DATABASE_URL=f"sqlite:///{tmp_path}/new.db")
    assert status == 0 and "doesn't exist yet" in output
    status, output = rig.run(DATABASE_URL="sqlite:////nonexistent-folder/firebreak.db")
    assert status == 1 and "✗ DATABASE_URL" in output
    status, output = rig.run(DATABASE_URL="postgresql://nobody@127.0.0.1:1/firebreak")
    assert status == 1 and "✗ DATABASE_URL: the database doesn't answer" in output


def test_the_command_exits_non_zero_on_a_failure(rig: Rig, tmp_path: os.PathLike[str]) -> None:
    rig.slack.set_scopes(set(BOT_SCOPES) - {"users:read"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NOTION_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bolt_app", "check"],
        cwd=tmp_path,
        env={**env, **rig.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "✗ Slack bot scopes: missing users:read" in done.stdout


def test_labels_the_database_has_at_or_above_the_next_number_fail(rig: Rig) -> None:
    """A reset store beside a database with INC-1…INC-40 (or a second deployment on it)."""
    database_id, data_source_id = rig.notion.add_database()
    for number in (1, 7, 40):
        rig.notion.add_page(
            data_source_id=data_source_id,
            properties={
                "Name": {"title": [{"text": {"content": f"INC-{number}: old"}}]},
                "Incident": {"rich_text": [{"text": {"content": f"INC-{number}"}}]},
            },
        )
    status, output = rig.run(NOTION_POSTMORTEM_DATABASE_ID=database_id)
    assert status == 1
    assert (
        "✗ incident numbers: the next declare would be INC-1, and the Notion database already"
        " has INC-1…INC-40; point DATABASE_URL at the old store or set INCIDENT_NUMBER_START=41"
    ) in output
    status, output = rig.run(NOTION_POSTMORTEM_DATABASE_ID=database_id, INCIDENT_NUMBER_START="41")
    assert status == 0, output
    assert "✓ incident numbers: the next declare is INC-41, unused in Notion" in output
