"""bolt_app.adapters against the fakes, through the real clients."""
