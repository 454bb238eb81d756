"""`python -m bolt_app demo`: the script, what it shows, and `--keep`'s control port."""
