"""The postmortem page's Slack side: the transcript dump, the timeline, the AI draft.

Built on the incident services; it never imports slack_bolt or peewee.
"""
