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

from tests.helpers.transcript_workers import boot


def main(argv: list[str]) -> int:
    services, incident = boot(*argv, TRANSCRIPT_SYNC_SECONDS="0.05", TRANSCRIPT_NOTION_RPS="0")
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
