"""A child process that triggers transcript dumps, for the crash and multi-process tests.

    python -m tests.helpers.transcript_workers DB_URL SLACK_URL NOTION_URL DATABASE_ID \
        INCIDENT_NUMBER THREADS

Builds the real services (real WebClient and notion-client against the fakes), prints
``ready``, waits for ``go`` on stdin, then runs THREADS triggers at once (request, then
dump; a busy answer is fine), prints ``result <written|busy>`` for each and ``finished``.
"""

from __future__ import annotations

import sys
import threading

from bolt_app.adapters.slack import build_web_client
from bolt_app.core.clock import utcnow
from bolt_app.runtime.config import load_settings
from bolt_app.runtime.wiring import build_services
from bolt_app.services import Services
from bolt_app.transcript.dump import ChannelProgress, DumpBusy
from storage import Incident, open_store

NOTION_TOKEN = "ntn_fake_token"


def boot(
    db_url: str, slack_url: str, notion_url: str, database_id: str, number: str, **env: str
) -> tuple[Services, Incident]:
    """The real services against the fakes, and incident `number`; `env` adds settings."""
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
            **env,
        },
        dotenv_path=None,
    )
    client = build_web_client(settings.slack_bot_token, settings.slack_api_base_url)
    services = build_services(settings, client, store=open_store(db_url, migrate=False))
    incident = services.store.incident_by_number(int(number))
    assert incident is not None
    return services, incident


def main(argv: list[str]) -> int:
    *where, threads = argv
    services, incident = boot(*where)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    barrier = threading.Barrier(int(threads))
    lock = threading.Lock()

    def trigger() -> None:
        barrier.wait()
        services.transcript.request(incident, "U0ALICE")
        try:
            progress = ChannelProgress(services.slack, services.store, incident, utcnow)
            outcome = str(services.transcript.dump(incident, progress).written)
        except DumpBusy:
            outcome = "busy"
        with lock:
            print(f"result {outcome}", flush=True)

    workers = [threading.Thread(target=trigger) for _ in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("finished", flush=True)
    services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
