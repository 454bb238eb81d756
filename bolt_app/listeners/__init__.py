"""The Slack edge: every entry point of the bot is registered here.

Listeners parse payloads, ack at once, hand work to the services, and talk to the user.
They are the only code that knows Bolt's `ack`, `respond`, `body` and `view`.
"""

from __future__ import annotations

from slack_bolt import App

from bolt_app.listeners import commands, dump, errors, events, views
from bolt_app.services import Services


def register_listeners(app: App, services: Services) -> None:
    errors.register(app)
    commands.register(app, services)
    views.register(app, services)
    dump.register(app, services)
    events.register(app, services)
