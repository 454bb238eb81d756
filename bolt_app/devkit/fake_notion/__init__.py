"""FakeNotion: a local Notion API (version 2025-09-03), as strict as the real one."""

from bolt_app.devkit.fake_notion.fake import FakeNotion as FakeNotion
