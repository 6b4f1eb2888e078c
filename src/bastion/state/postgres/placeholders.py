"""Statements written once for SQLite and PostgreSQL: `?` placeholders, turned into `%s` here."""

from __future__ import annotations

from functools import cache


@cache
def postgres(statement: str) -> bytes:
    """`statement` with PostgreSQL's (psycopg's) placeholders; it must hold no literal `?` or `%`."""
    if "%" in statement:
        raise ValueError(f"a shared statement may not contain '%': {statement!r}")
    return statement.replace("?", "%s").encode()
