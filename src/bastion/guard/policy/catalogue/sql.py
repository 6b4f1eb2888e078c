"""SQL: statements parsed with sqlglot (several dialects), wherever SQL appears in the arguments."""

from __future__ import annotations

from collections.abc import Iterator

from bastion.guard.policy.catalogue.base import CallView, Entry, Finding, Severity, entry
from bastion.model import Decision

ENTRIES: tuple[Entry, ...] = (
    entry("sql.drop", "Drop a table or database", "A DROP statement.", Severity.CRITICAL, Decision.DENY),
)


def sql_operations(text: str) -> frozenset[str] | None:
    """The operations of the SQL statements in `text`, or None if `text` is not SQL."""
    return None


def detect(call: CallView) -> Iterator[Finding]:
    return iter(())
