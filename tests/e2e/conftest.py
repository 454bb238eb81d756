"""The one ``bot`` fixture of the end-to-end tests, and how a module varies it.

``bot`` is ``bolt_app.devkit.harness.running_bot``: the real App over real Socket Mode,
real clients, FakeSlack and FakeNotion, on a fresh SQLite file in ``tmp_path``.

* ``bot_env``: extra settings for ``running_bot`` (none by default).  A module that needs
  a variant overrides it, e.g. ``RECONCILE_INTERVAL_SECONDS="3600"`` where the tests run
  reconcile passes themselves, or the fake LLM's base URL (an override may ask for other
  fixtures; the bot is then stopped before they are).
* ``bot_database_url``: the bot's database (override it with ``store_url`` to run a module
  on both stores).
* ``make_bot(**env)``: ``running_bot`` on the same database with ``bot_env`` plus ``env``,
  for a test that starts its own bot: ``with make_bot(RECONCILE_INTERVAL_SECONDS="0.5")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from bolt_app.devkit.harness import Bot, running_bot

MakeBot = Callable[..., AbstractContextManager[Bot]]


@pytest.fixture
def bot_database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'firebreak.db'}"


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {}


@pytest.fixture
def make_bot(bot_database_url: str, bot_env: dict[str, str]) -> MakeBot:
    def make(**env: str) -> AbstractContextManager[Bot]:
        return running_bot(bot_database_url, **{**bot_env, **env})

    return make


@pytest.fixture
def bot(make_bot: MakeBot) -> Iterator[Bot]:
    with make_bot() as bot:
        yield bot
