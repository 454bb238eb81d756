"""Notion's rate limits pause the work and never fail it (page creation aside).

A 429 `rate_limited` or 529 `service_overload` means Notion did nothing with the
request, so the gateway sends it again after `Retry-After`. Waits are recorded by an
injected `sleep` where notion-client doesn't wait itself (it never retries a 529 POST or
PATCH), so a 30-second Retry-After costs the test nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bolt_app.adapters.notion import MAX_PAUSE_SECONDS, NotionError, NotionGateway
from bolt_app.devkit.fake_notion import FakeNotion
from bolt_app.formats import notion_blocks as nb
from tests.adapters.test_notion_adapter import FIELDS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake() -> Iterator[FakeNotion]:
    with FakeNotion() as server:
        yield server


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def gateway(fake: FakeNotion, slept: list[float]) -> Iterator[NotionGateway]:
    database_id, _ = fake.add_database()
    opened = NotionGateway(
        token="ntn_fake_token",
        base_url=fake.base_url,
        database_id=database_id,
        timeout_s=5.0,
        logger=logging.getLogger("tests.notion"),
        sleep=slept.append,
    )
    yield opened
    opened.close()


def lines(n: int) -> list[nb.Block]:
    return [nb.paragraph([nb.text(f"line {i}")]) for i in range(n)]


@pytest.mark.parametrize("status", [429, 529])
def test_a_429_or_529_with_retry_after_30_pauses_then_writes_once(
    fake: FakeNotion, gateway: NotionGateway, slept: list[float], status: int
) -> None:
    page = gateway.create_postmortem(FIELDS, [])
    fake.inject("blocks.children.append", status=status, retry_after=30, times=2)
    ids = gateway.append_blocks(page.id, lines(3))
    assert len(ids) == 3 and slept == [30.0, 30.0]
    texts = [FakeNotion.plain_text(b) for b in fake.children_tree(page.id)]
    assert texts == ["line 0", "line 1", "line 2"]  # nothing lost, nothing twice


def test_page_creation_is_never_sent_twice_even_when_rate_limited(
    fake: FakeNotion, gateway: NotionGateway, slept: list[float]
) -> None:
    gateway.schema()
    fake.inject("pages.create", status=529, retry_after=30)
    with pytest.raises(NotionError) as refused:
        gateway.create_postmortem(FIELDS, [])
    assert (refused.value.status, refused.value.retry_after, slept) == (529, 30.0, [])
    assert fake.count("pages.create") == 1


def test_a_pause_past_the_limit_fails_with_notions_answer(
    fake: FakeNotion, gateway: NotionGateway, slept: list[float]
) -> None:
    page = gateway.create_postmortem(FIELDS, [])
    fake.inject("blocks.children.append", status=529, retry_after=MAX_PAUSE_SECONDS + 1)
    with pytest.raises(NotionError) as failed:
        gateway.append_blocks(page.id, lines(1))
    assert failed.value.status == 529 and slept == []


def test_a_request_budget_per_window_is_waited_out_with_nothing_lost(fake: FakeNotion) -> None:
    database_id, _ = fake.add_database()
    gateway = NotionGateway(  # really sleeping: the fake's window must pass
        token="ntn_fake_token",
        base_url=fake.base_url,
        database_id=database_id,
        timeout_s=5.0,
        logger=logging.getLogger("tests.notion"),
    )
    page = gateway.create_postmortem(FIELDS, [])
    fake.rate_limit(3, window_s=1.0)
    for _ in range(6):
        gateway.append_blocks(page.id, lines(2))
    fake.rate_limit(None)
    gateway.close()
    assert len(fake.children_tree(page.id)) == 12
    assert fake.count("blocks.children.append") > 6  # some were turned away and resent
