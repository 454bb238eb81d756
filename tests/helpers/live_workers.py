"""A child process that keeps an incident's live transcript in sync, for the kill tests.

    python -m tests.helpers.live_workers DB_URL SLACK_URL NOTION_URL DATABASE_ID NUMBER

Builds the real services (real WebClient and notion-client against the fakes), prints
``ready``, waits for ``go``, then asks for a live sync every 50 ms (as captured events
do) until ``stop`` arrives on stdin; then it waits for the running sync, prints
``stopped`` and exits. The test process captures the messages into the shared store.
"""

from __future__ import annotations

import sys
import threading

from bolt_app.adapters.slack import build_web_client
from bolt_app.runtime.config import load_settings
from bolt_app.runtime.wiring import build_services
from storage import open_store

NOTION_TOKEN = "ntn_fake_token"


def main(argv: list[str]) -> int:
    db_url, slack_url, notion_url, database_id, number = argv
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-fake-bot",
            "SLACK_APP_TOKEN": "xapp-fake-app",
            "NOTION_TOKEN": NOTION_TOKEN,
            "NOTION_POSTMORTEM_DATABASE_ID": database_id,
            "DATABASE_URL": db_url,
            "SLACK_API_BASE_URL": slack_url,
            "NOTION_API_BASE_URL": notion_url,
            "NOTION_TIMEOUT_SECONDS": "2",
            "TRANSCRIPT_SYNC_SECONDS": "0.05",
            "TRANSCRIPT_NOTION_RPS": "0",
        },
        dotenv_path=None,
    )
    client = build_web_client(settings.slack_bot_token, settings.slack_api_base_url)
    services = build_services(settings, client, store=open_store(db_url, migrate=False))
    incident = services.store.incident_by_number(int(number))
    assert incident is not None
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    while not stop.wait(0.05):
        services.transcript.changes.soon(incident)
    services.close(10.0)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
