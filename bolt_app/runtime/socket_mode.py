"""Build the Bolt app and connect it over Socket Mode.

Socket Mode client choice (see "The process model" in docs/ARCHITECTURE.md): slack_sdk's
built-in client needs about 60 s to notice an abruptly dropped TCP connection and spins
a core meanwhile. The `websocket-client` based client reconnects in under a second on a
closed connection; with a 2 s `ping_timeout` it also notices a silent one within a few
seconds and a `disconnect` refresh never stalls. slack_sdk does not expose `ping_timeout`, so
`runtime.slack_internals` passes it where the session starts. A lost connection is
replaced at once, and further attempts back off exponentially (`runtime.reconnect`).
"""

from __future__ import annotations

import logging
from typing import cast

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bolt_app.listeners import register_listeners
from bolt_app.runtime.reconnect import AUTH_ERRORS, DEFAULT_BACKOFF, Backoff
from bolt_app.runtime.slack_internals import PingTimeoutClient, PingTimeoutHandler
from bolt_app.services import Services

log = logging.getLogger(__name__)

#: Seconds between websocket pings; also how often a lost session is re-checked.
PING_INTERVAL = 3.0
#: Seconds without a pong before the connection counts as dead and is replaced.
PING_TIMEOUT = 2.0
#: Envelopes parsed and acked at once. Listeners run inline and only parse, ack and hand
#: work to our pools, so a few threads keep up with a burst; more only add GIL contention.
CONCURRENCY = 10


class AppTokenRefused(Exception):
    """Slack refused SLACK_APP_TOKEN when the socket first connected."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _Goodbye(logging.Filter):
    """Drop websocket-client's `<error> - goodbye` line at the end of every connection:
    the client has told it already (a lost connection's error, or the attempt's line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().endswith(" - goodbye")


def _quiet_goodbyes() -> None:
    websocket_logger = logging.getLogger("websocket")
    if not any(isinstance(f, _Goodbye) for f in websocket_logger.filters):
        websocket_logger.addFilter(_Goodbye())


class _ClientTokenNotice(logging.Filter):
    """Drop Bolt's warning that SLACK_BOT_TOKEN is unused because we pass a client.

    Bolt reads SLACK_BOT_TOKEN from the environment by itself and warns that the client
    (which carries the same token) wins; that is exactly our intent, so it is noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def build_app(services: Services, client: WebClient) -> App:
    """The Bolt app with every listener registered.

    `App` has no base-URL setting, so the caller builds `client` with our base URL and
    retry handlers. `App` calls `auth.test` here and keeps the answer, so the first
    envelope's ack doesn't wait for it; `run` has already checked the token itself to
    turn a rejected one into a one-line start-up error.
    """
    bolt_logger = logging.getLogger("bolt_app.bolt")
    bolt_logger.addFilter(_ClientTokenNotice())
    app = App(
        client=client,
        request_verification_enabled=False,  # Socket Mode: Slack authenticated the socket
        # Our listeners only parse, ack and hand work to our own pools, so running them
        # inline and acking when they return saves Bolt's 10 ms ack-polling round trip.
        process_before_response=True,
        logger=bolt_logger,
    )
    register_listeners(app, services)
    return app


class SocketRunner:
    """Connects a Bolt app over Socket Mode and closes it quickly on request.

    `backoff` spaces the reconnect attempts after a failed one (1 s doubling to 60 s by
    default; tests pass a short one).
    """

    def __init__(
        self,
        app: App,
        app_token: str,
        *,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        _quiet_goodbyes()
        self.handler = PingTimeoutHandler(
            app,
            app_token,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            concurrency=CONCURRENCY,
            backoff=backoff,
        )

    @property
    def client(self) -> PingTimeoutClient:
        return cast(PingTimeoutClient, self.handler.client)

    def connect(self) -> None:
        """Open the socket and return; the client's threads keep it alive.

        `AppTokenRefused` if Slack refuses the app token now; once the bot has connected,
        a refusal is retried with backoff instead, and `down_reason` tells it.
        """
        # An attempt like any other: slack_sdk's monitor, which starts checking at once,
        # must not open a second connection before this one has had time to open.
        self.client.reconnects.attempted()
        try:
            self.handler.connect()
        except SlackApiError as error:
            data = error.response.data
            code = str(data.get("error", "")) if isinstance(data, dict) else ""
            if code in AUTH_ERRORS:
                raise AppTokenRefused(code) from None
            raise

    def is_connected(self) -> bool:
        return bool(self.client.is_connected())

    def down_reason(self) -> str:
        """Why the socket is not connected, for `/healthz`."""
        return self.client.reconnects.reason() or "the Socket Mode connection is down; reconnecting"

    def close(self) -> None:
        self.client.close()
