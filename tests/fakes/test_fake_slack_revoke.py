"""FakeSlack's revoked app token: `apps.connections.open` refuses it with HTTP 200 and
`ok: false`, as Slack does, and no websocket handshake is accepted until it is restored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from bolt_app.devkit.fake_slack import FakeSlack

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def open_url(slack: FakeSlack) -> str:
    client = WebClient(base_url=slack.base_url)
    return str(client.apps_connections_open(app_token=slack.app_token)["url"])


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked"])
def test_a_revoked_app_token_is_refused_by_apps_connections_open(
    slack: FakeSlack, error: str
) -> None:
    slack.revoke_app_token(error)
    with pytest.raises(SlackApiError) as refused:
        open_url(slack)
    assert refused.value.response.status_code == 200
    assert refused.value.response.data == {"ok": False, "error": error}
    assert [(c.ok, c.error) for c in slack.calls_to("apps.connections.open")] == [(False, error)]
    assert slack.count("apps.connections.open") == 1
    slack.restore_app_token()
    assert open_url(slack).startswith("ws://")


def test_no_handshake_is_accepted_while_the_app_token_is_revoked(slack: FakeSlack) -> None:
    issued_before = open_url(slack)
    slack.revoke_app_token()
    with pytest.raises(InvalidStatus) as refused, ws_connect(issued_before):
        pass
    assert refused.value.response.status_code == 401
    slack.restore_app_token()
    with ws_connect(open_url(slack)) as sock:
        assert '"hello"' in str(sock.recv(timeout=5))


def test_the_bot_token_still_works_while_the_app_token_is_revoked(slack: FakeSlack) -> None:
    slack.revoke_app_token()
    assert WebClient(token=slack.bot_token, base_url=slack.base_url).auth_test()["ok"]
