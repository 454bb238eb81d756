"""FakeSlack: a local Slack Web API and Socket Mode server, as strict as the real one."""

from bolt_app.devkit.fake_slack.fake import FakeSlack as FakeSlack
