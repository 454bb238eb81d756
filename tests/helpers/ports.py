"""A free TCP port on 127.0.0.1, for a `/healthz` server a test starts.

The port is free when asked; the bot binds it a moment later, which is good enough on a
test machine (nothing else hands out ports from that range in between).
"""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
