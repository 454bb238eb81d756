"""ensure_page: exactly one postmortem page per incident, under races, crashes and timeouts.

Real threads, real processes, both stores, the real notion-client against FakeNotion.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bolt_app.adapters.notion import NotionTimeout
from bolt_app.core.domain import ArtifactKind
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.formats.template import TRANSCRIPT_HEADING
from storage import Store, open_store
from tests.helpers.children import Child
from tests.helpers.factories import build_postmortem_service, declare

WORKER = "tests.helpers.postmortem_workers"


@pytest.fixture
def notion() -> Iterator[FakeNotion]:
    with FakeNotion() as fake:
        yield fake


def headings(notion: FakeNotion, page_id: str) -> list[str]:
    return [
        FakeNotion.plain_text(b)
        for b in notion.children_tree(page_id)
        if str(b["type"]).startswith("heading_")
    ]


def assert_one_complete_page(notion: FakeNotion, data_source_id: str) -> dict:
    pages = notion.pages(data_source_id, include_archived=True)
    assert len(pages) == 1, f"{len(pages)} pages"
    page = pages[0]
    titles = headings(notion, page["id"])
    for section in ("Summary", "Timeline", "Action items", TRANSCRIPT_HEADING):
        assert section in titles
    return page


@pytest.mark.timeout(60)
def test_50_threads_make_one_page_and_all_get_its_url(store: Store, notion: FakeNotion) -> None:
    database_id, data_source_id = notion.add_database()
    notion.set_latency(0.3, "pages.create")
    service = build_postmortem_service(store, notion.base_url, database_id)
    incident = declare(store)

    with ThreadPoolExecutor(50) as pool:
        urls = list(pool.map(lambda _: service.ensure_page(incident).artifact.url, range(50)))

    page = assert_one_complete_page(notion, data_source_id)
    assert set(urls) == {page["url"]}
    assert notion.count("pages.create") == 1
    artifact = store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM)
    assert artifact is not None and artifact.url == page["url"]
    assert len(store.attempts(int(incident.id), ArtifactKind.NOTION_POSTMORTEM)) == 1


def start_workers(
    store_url: str,
    notion: FakeNotion,
    database_id: str,
    incident_id: int,
    processes: int,
    threads: int,
    timeout: float,
) -> list[Child]:
    children = [
        Child(
            store_url,
            notion.base_url,
            database_id,
            str(incident_id),
            str(threads),
            str(timeout),
            module=WORKER,
        )
        for _ in range(processes)
    ]
    for child in children:
        child.expect("ready")
    for child in children:
        child.send("go")
    return children


@pytest.mark.timeout(120)
def test_3_processes_x_20_threads_make_one_page(store_url: str, notion: FakeNotion) -> None:
    database_id, data_source_id = notion.add_database()
    notion.set_latency(0.3, "pages.create")
    store = open_store(store_url, migrate=False)
    incident = declare(store)
    children = start_workers(store_url, notion, database_id, int(incident.id), 3, 20, 10)
    try:
        urls = {url for child in children for url in json.loads(child.expect("result", 90))}
    finally:
        for child in children:
            child.close()
    page = assert_one_complete_page(notion, data_source_id)
    assert urls == {page["url"]}
    assert notion.count("pages.create") == 1
    store.close()


@pytest.mark.timeout(60)
def test_a_process_killed_mid_create_is_adopted_not_duplicated(
    store_url: str, notion: FakeNotion
) -> None:
    database_id, data_source_id = notion.add_database()
    notion.inject("pages.create", status=None, drop_response_after_handling=True)
    store = open_store(store_url, migrate=False)
    incident = declare(store)
    (child,) = start_workers(store_url, notion, database_id, int(incident.id), 1, 1, 2)
    notion.wait_for(lambda: notion.pages(data_source_id), timeout=20)  # created, unanswered
    os.kill(child.pid, signal.SIGKILL)
    child.close()
    assert store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM) is None

    service = build_postmortem_service(store, notion.base_url, database_id, timeout_s=2)
    ensured = service.ensure_page(incident)

    assert ensured.outcome == "adopted"
    page = assert_one_complete_page(notion, data_source_id)
    assert ensured.artifact.url == page["url"]
    assert notion.count("pages.create") == 1
    store.close()


@pytest.mark.timeout(60)
def test_a_timed_out_create_is_adopted_by_the_next_attempt(
    store: Store, notion: FakeNotion
) -> None:
    database_id, data_source_id = notion.add_database()
    notion.inject("pages.create", status=None, drop_response_after_handling=True)
    service = build_postmortem_service(store, notion.base_url, database_id, timeout_s=1)
    incident = declare(store)

    with pytest.raises(NotionTimeout):
        service.ensure_page(incident)
    assert store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM) is None
    ensured = service.ensure_page(incident)

    assert ensured.outcome == "adopted"
    page = assert_one_complete_page(notion, data_source_id)
    assert ensured.artifact.url == page["url"]
    assert notion.count("pages.create") == 1


def test_a_failed_create_leaves_no_row_and_the_retry_creates_once(
    store: Store, notion: FakeNotion
) -> None:
    database_id, data_source_id = notion.add_database()
    notion.inject("pages.create", status=500, times=1)
    service = build_postmortem_service(store, notion.base_url, database_id)
    incident = declare(store)

    with pytest.raises(Exception, match="Notion"):
        service.ensure_page(incident)
    assert store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM) is None
    ensured = service.ensure_page(incident)

    assert ensured.outcome == "created"  # the earlier attempt made nothing to adopt
    assert_one_complete_page(notion, data_source_id)
    assert notion.count("pages.create") == 2


def test_a_long_template_is_complete_before_the_row_is_saved(
    store: Store, notion: FakeNotion
) -> None:
    database_id, data_source_id = notion.add_database()
    template = "\n\n".join(f"Paragraph {i}" for i in range(250)) + "\n\n## Slack transcript\n"
    service = build_postmortem_service(store, notion.base_url, database_id, template=template)
    incident = declare(store)

    service.ensure_page(incident)

    (page,) = notion.pages(data_source_id)
    blocks = notion.children_tree(page["id"])
    assert len(blocks) == 251
    assert FakeNotion.plain_text(blocks[249]) == "Paragraph 249"
    assert blocks[250]["heading_2"]["is_toggleable"] is True
