"""Thin typed wrappers over slack_sdk, notion-client and the LLM client.

The only code that talks HTTP to Slack, Notion or a model; every failure leaves as one
of our typed errors.
"""
