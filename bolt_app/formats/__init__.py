"""Pure payload builders: Block Kit, Notion blocks and rich text, the Markdown template.

They build dicts and never call an API, so they are tested without a server.
"""
