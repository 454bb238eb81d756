"""Operator commands behind `python -m bolt_app <command>`, one module per command.

`bolt_app.__main__` only dispatches: each command module (`manifest`, `check`,
`notion_setup`, `demo`) exports `add_parser(subparsers)` and `main(args) -> int`, so a
command can be tested by calling its functions directly. `yaml`, `demo_script` and
`demo_view` are their helpers.
"""
