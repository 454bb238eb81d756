"""The incident services: declare, set up exactly once, change, announce, repair.

They take plain values and never import slack_bolt or peewee, so a CLI or a test can
drive them without Slack.
"""
