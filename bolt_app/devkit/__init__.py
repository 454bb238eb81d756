"""Local fakes of Slack, Notion and an LLM, the in-process harness and the demo.

Used by the demo command, the tests and the benchmarks, and by nothing else: production
code never imports it (an import contract checks this).
"""
