"""``python -m bolt_app <command>``: check, manifest, notion-setup."""
