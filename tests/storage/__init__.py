"""The storage package on SQLite and PostgreSQL: queries, migrations, locks."""
