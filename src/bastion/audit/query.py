"""Which events to read: the filters search and export share, and their SQL (both backends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters on the audit log. Unset filters match everything; set ones must all match.

    `since`/`until` are Unix times (`since` inclusive, `until` exclusive). `types` matches any
    of the given event types. `verdict` matches the verdict of `call.verdict` and
    `approval.decided` events (allow, deny, ask) and the outcome of `call.completed`
    (allowed, denied, error). `text` is full-text search over tool names, arguments, results
    and every other detail: all of its words must occur.
    """

    since: float | None = None
    until: float | None = None
    agent: str | None = None
    server: str | None = None
    tool: str | None = None
    types: tuple[str, ...] = ()
    verdict: str | None = None
    rule: str | None = None
    correlation_id: str | None = None
    text: str | None = None


def where_clause(query: EventQuery, dialect: Dialect, *, table: str = "") -> tuple[list[str], list[Any]]:
    """The conditions (joined by AND) and their parameters, for a query on the `events` table.

    `table` qualifies every column (`"events"`): needed when the query joins another table
    that has columns of the same name (SQLite's full-text index has `tool`).
    Full-text search is left out: each backend joins its own index.
    """
    mark = "?" if dialect == "sqlite" else "%s"
    prefix = f"{table}." if table else ""
    conditions: list[str] = []
    params: list[Any] = []
    if query.since is not None:
        conditions.append(f"{prefix}time >= {mark}")
        params.append(query.since)
    if query.until is not None:
        conditions.append(f"{prefix}time < {mark}")
        params.append(query.until)
    for column in ("agent", "server", "tool", "verdict", "rule", "correlation_id"):
        value = getattr(query, column)
        if value is not None:
            conditions.append(f"{prefix}{column} = {mark}")
            params.append(value)
    if query.types:
        conditions.append(f"{prefix}type IN ({', '.join(mark for _ in query.types)})")
        params.extend(query.types)
    return conditions, params


def fts5_expression(text: str) -> str:
    """`text` as an FTS5 query: every word a quoted phrase, so user input is never FTS syntax."""
    words = text.split()
    return " ".join('"' + word.replace('"', '""') + '"' for word in words) if words else '""'


def paged(
    select: str,
    conditions: list[str],
    params: list[Any],
    dialect: Dialect,
    *,
    newest_first: bool,
    cursor: int | None,
    limit: int | None,
    seq: str = "seq",
    order: str | None = None,
) -> str:
    """`select` (up to and with its FROM clause) restricted by `conditions`, as one page: past
    `cursor` in the direction of travel (an exclusive bound on `seq`), ordered by `order`
    (default `seq`), at most `limit` rows. Adds the cursor's and limit's values to `params`."""
    mark = "?" if dialect == "sqlite" else "%s"
    if cursor is not None:
        conditions.append(f"{seq} {'<' if newest_first else '>'} {mark}")
        params.append(cursor)
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    sql = f"{select}{where} ORDER BY {order or seq} {'DESC' if newest_first else 'ASC'}"
    if limit is not None:
        sql += f" LIMIT {mark}"
        params.append(limit)
    return sql
