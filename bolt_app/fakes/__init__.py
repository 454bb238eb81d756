"""Local fakes of the external services (Slack, Notion) for tests, the demo and benchmarks."""

from bolt_app.fakes.slack import FakeSlack as FakeSlack
