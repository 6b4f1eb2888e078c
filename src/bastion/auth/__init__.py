"""Who is calling: agent tokens (their SQLite and PostgreSQL stores, token requests), JWT,
and credentials turned into a `Principal`."""
