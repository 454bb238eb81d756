"""Test helpers, including entry points for child processes (``python -m tests.helpers...``)."""
