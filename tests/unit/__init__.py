"""Pure, fast tests: formats, naming, settings, the lifecycle table (no bot, no server)."""
