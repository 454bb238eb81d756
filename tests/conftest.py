"""Shared fixtures.

Storage fixtures run every test on SQLite and, when ``FIREBREAK_TEST_POSTGRES=1``, on a
real PostgreSQL (a fresh randomly named database per test, dropped afterwards; the
server is ``FIREBREAK_TEST_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/
postgres``).  Without the variable the PostgreSQL cases are skipped; with it, an
unreachable server fails them.

* ``empty_db_url``: the URL of a fresh database with no tables.
* ``store_url``: the URL of a fresh migrated database (for child processes).
* ``store``: an open :class:`storage.Store` on ``store_url``.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

# The repository root, so that ``tests.helpers`` and the real ``storage`` package import
# under the ``pytest`` entry point (which does not put the working directory on the path).
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
from psycopg2 import sql  # noqa: E402

from storage import Store, open_store  # noqa: E402

PG_ENV = "FIREBREAK_TEST_POSTGRES"
PG_URL_ENV = "FIREBREAK_TEST_PG_URL"
PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_SKIP_REASON = f"set {PG_ENV}=1"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: needs a real PostgreSQL (FIREBREAK_TEST_POSTGRES=1)"
    )


def postgres_enabled() -> bool:
    return os.environ.get(PG_ENV) == "1"


def pg_admin_url() -> str:
    """The server's maintenance database, where test databases are created."""
    return os.environ.get(PG_URL_ENV, PG_DEFAULT_URL)


def _admin_connection() -> psycopg2.extensions.connection:
    try:
        conn = psycopg2.connect(pg_admin_url(), connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"{PG_ENV}=1 but PostgreSQL at {pg_admin_url()} is unreachable: {exc}")
    conn.autocommit = True
    return conn


@pytest.fixture
def postgres_db_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (skips unless FIREBREAK_TEST_POSTGRES=1)."""
    if not postgres_enabled():
        pytest.skip(PG_SKIP_REASON)
    name = f"firebreak_test_{uuid.uuid4().hex[:16]}"
    admin = _admin_connection()
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield urlunparse(urlparse(pg_admin_url())._replace(path=f"/{name}"))
        with admin.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        admin.close()


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database without tables, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'firebreak.db'}"
    url: str = request.getfixturevalue("postgres_db_url")
    return url


@pytest.fixture
def store_url(empty_db_url: str) -> str:
    """A fresh migrated database, on each backend; hand the URL to child processes."""
    open_store(empty_db_url, migrate=True).close()
    return empty_db_url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store on a fresh migrated database, on each backend."""
    opened = open_store(store_url, migrate=False)
    try:
        yield opened
    finally:
        opened.close()


_skipped_postgres: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember PostgreSQL cases that were skipped (see pytest_sessionfinish)."""
    if report.skipped and "postgres" in report.nodeid:
        _skipped_postgres.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With FIREBREAK_TEST_POSTGRES=1 (as in CI), a skipped PostgreSQL case fails the run."""
    if postgres_enabled() and _skipped_postgres:
        print(
            f"\n{len(_skipped_postgres)} PostgreSQL test(s) skipped although "
            f"{PG_ENV}=1: {_skipped_postgres[:5]}"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
