"""bolt_app.incidents services (announcements, postmortem pages) on both stores, no Socket Mode."""
