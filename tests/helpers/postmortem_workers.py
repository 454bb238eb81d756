"""Child-process entry point for the exactly-once postmortem tests.

``python -m tests.helpers.postmortem_workers STORE_URL NOTION_URL DATABASE_ID INCIDENT_ID
THREADS TIMEOUT`` builds a real `PostmortemService` (real notion-client, real store and
lock), says ``ready``, waits for ``go`` on stdin, then calls `ensure_page` from THREADS
threads at once and prints ``result <json list of page urls>``. Errors go to stderr.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

from bolt_app.incidents.postmortem import PostmortemService
from storage import open_store
from tests.helpers.factories import build_postmortem_service


def main() -> None:
    store_url, notion_url, database_id, incident_id, threads, timeout = sys.argv[1:7]
    store = open_store(store_url, migrate=False)
    service: PostmortemService = build_postmortem_service(
        store, notion_url, database_id, timeout_s=float(timeout)
    )
    incident = store.get_incident(int(incident_id))
    assert incident is not None
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected go")
    with ThreadPoolExecutor(int(threads)) as pool:
        urls = list(
            pool.map(lambda _: service.ensure_page(incident).artifact.url, range(int(threads)))
        )
    print("result " + json.dumps(urls), flush=True)
    store.close()


if __name__ == "__main__":
    main()
