"""The whole bot in-process over real Socket Mode against the fakes (the shared ``bot`` fixture)."""
