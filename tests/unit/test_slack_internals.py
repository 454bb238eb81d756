"""The private slack_sdk / slack_bolt names `runtime.slack_internals` relies on still exist.

A failure here means a Slack library release moved one of them: read the docstring of
`bolt_app/runtime/slack_internals.py` for why each is used, and adapt that module.
"""

from __future__ import annotations

import inspect

from slack_bolt.adapter.socket_mode import internals
from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.interval_runner import IntervalRunner
from slack_sdk.socket_mode.websocket_client import SocketModeClient

from bolt_app.runtime import slack_internals


def test_the_session_runner_we_override_still_exists_and_takes_no_arguments() -> None:
    original = SocketModeClient._run_current_session
    assert list(inspect.signature(original).parameters) == ["self"]
    assert "current_session" in inspect.getsource(original)
    assert slack_internals.PingTimeoutClient._run_current_session is not original


def test_the_session_is_run_with_run_forever_and_a_ping_interval() -> None:
    source = inspect.getsource(SocketModeClient._run_current_session)
    assert "run_forever(" in source and "ping_interval" in source


def test_bolts_handler_keeps_the_attributes_we_set_and_its_handle_method() -> None:
    init = inspect.getsource(SocketModeHandler.__init__)
    for attribute in ("self.app", "self.app_token", "self.client"):
        assert attribute in init
    assert list(inspect.signature(SocketModeHandler.handle).parameters) == [
        "self",
        "client",
        "req",
    ]


def test_bolts_run_and_ack_helpers_keep_their_signatures() -> None:
    assert list(inspect.signature(internals.run_bolt_app).parameters) == ["app", "req"]
    assert list(inspect.signature(internals.send_response).parameters)[:4] == [
        "client",
        "req",
        "bolt_resp",
        "start_time",
    ]


def test_the_request_listener_list_is_still_where_handlers_register() -> None:
    assert "socket_mode_request_listeners" in inspect.getsource(BaseSocketModeClient)
    handle_source = inspect.getsource(SocketModeHandler.__init__)
    assert "socket_mode_request_listeners" in handle_source


def test_the_reconnect_path_we_replace_is_still_where_slack_sdk_reconnects() -> None:
    init = inspect.getsource(SocketModeClient.__init__)
    assert "IntervalRunner(self._run_current_session, 0.5)" in init
    assert "IntervalRunner(self._monitor_current_session" in init
    assert "connect_to_new_endpoint()" in inspect.getsource(
        SocketModeClient._monitor_current_session
    )
    assert "connect_to_new_endpoint(force=True)" in inspect.getsource(
        BaseSocketModeClient.process_message
    )
    assert list(inspect.signature(BaseSocketModeClient.connect_to_new_endpoint).parameters) == [
        "self",
        "force",
    ]
    assert "self.event.set()" in inspect.getsource(IntervalRunner.shutdown)
    ours = slack_internals.PingTimeoutClient
    for name in (
        "connect",
        "connect_to_new_endpoint",
        "issue_new_wss_url",
        "_monitor_current_session",
    ):
        assert getattr(ours, name) is not getattr(SocketModeClient, name), name


def test_our_connect_keeps_what_slack_sdks_connect_does() -> None:
    assert list(inspect.signature(SocketModeClient.connect).parameters) == ["self"]
    source = inspect.getsource(SocketModeClient.connect)
    for used in (
        "self.wss_uri = self.issue_new_wss_url()",
        "websocket.WebSocketApp(",
        "self.auto_reconnect_enabled = self.default_auto_reconnect_enabled",
        "self.current_app_monitor.start()",
        "old_session.close()",
        "self.enqueue_message(message)",
        "self.on_open_listeners",
        "self.on_message_listeners",
        "self.on_error_listeners",
        "self.on_close_listeners",
    ):
        assert used in source, used


def test_the_message_processor_still_waits_on_the_queue_and_skips_a_none() -> None:
    """`close` wakes the processor with a `None` instead of waiting out its 1 s get."""
    source = inspect.getsource(BaseSocketModeClient.process_message)
    assert "message_queue.get(timeout=" in source and "if raw_message is not None" in source
    assert "while not self.closed" in inspect.getsource(BaseSocketModeClient.process_messages)
