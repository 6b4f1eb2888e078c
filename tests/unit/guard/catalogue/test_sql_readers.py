"""`sql_parse.read_sql` (a kept tokenizer and parser per dialect) reads as `sqlglot.parse` does, failures included."""

from __future__ import annotations

from typing import Any

import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.guard.policy.catalogue.sql_parse import DIALECTS, read_sql

WORDS = [
    "SELECT", "*", "id", "FROM", "t", "WHERE", "=", "1", "'a'", "LIMIT", "10", ";", "DROP", "TABLE", "DELETE", "UPDATE",
    "SET", "x", ",", "(", ")", "INSERT", "INTO", "VALUES", "GRANT", "ALL", "ON", "TO", "u", "EXEC", "--", "/*", "*/",
    "$$", "BEGIN", "END", "COPY", "WITH", "AS", "JOIN", "ORDER", "BY", "[a]", "`b`", '"c"', "@v", "?", "::", "INT",
]  # fmt: skip


def sqlglot_reading(text: str, dialect: str | None) -> Any:
    try:
        return sqlglot.parse(text, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    except Exception as e:
        return type(e)


def kept_reading(text: str, dialect: str | None) -> Any:
    try:
        return read_sql(text, dialect)
    except Exception as e:
        return type(e)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join), st.sampled_from(DIALECTS))
def test_kept_readers_read_as_sqlglot(text: str, dialect: str | None) -> None:
    """Generated text, good and bad interleaved: a failed read leaves nothing behind for the next."""
    assert kept_reading(text, dialect) == sqlglot_reading(text, dialect)


def test_a_failed_read_leaves_nothing_behind() -> None:
    for dialect in DIALECTS:
        assert kept_reading("SELECT FROM WHERE (", dialect) == sqlglot_reading("SELECT FROM WHERE (", dialect)
        assert read_sql("SELECT a FROM t", dialect) == sqlglot.parse("SELECT a FROM t", read=dialect)
