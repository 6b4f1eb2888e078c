"""The audit page's filters: query parameters to an `EventQuery`, and back to a query string."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from bastion.audit.events import EVENT_TYPES
from bastion.audit.query import EventQuery

RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
VERDICTS = ("allow", "deny", "ask", "allowed", "denied", "error")
TEXT_FIELDS = ("agent", "server", "tool", "text")
FIELDS = ("range", "since", "until", "agent", "server", "tool", "type", "verdict", "text")
MAX_FIELD = 500


class FilterError(ValueError):
    """A filter the page cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """The filters as the form shows them (`values`) and as the store reads them (`query`)."""

    values: Mapping[str, str] = field(default_factory=dict)
    query: EventQuery = field(default_factory=EventQuery)

    def query_string(self, **extra: str) -> str:
        """The filters (and `extra`, e.g. a cursor or a format) as a URL query string."""
        pairs = {k: v for k, v in self.values.items() if v} | {k: v for k, v in extra.items() if v}
        return urlencode(pairs)


def _moment(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{name}: {text!r} is not a date and time (YYYY-MM-DDTHH:MM, UTC)") from None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def parse_filters(params: Mapping[str, str], now: float | None = None) -> AuditFilters:
    """Read the filters from query parameters. Raises `FilterError` for one the store cannot use."""
    values = {name: params.get(name, "").strip() for name in FIELDS}
    for name, value in values.items():
        if len(value) > MAX_FIELD:
            raise FilterError(f"{name} is longer than {MAX_FIELD} characters")
    if values["range"] and values["range"] not in RANGES:
        raise FilterError(f"range must be one of {', '.join(RANGES)}")
    if values["type"] and values["type"] not in EVENT_TYPES:
        raise FilterError(f"no event type {values['type']!r}")
    if values["verdict"] and values["verdict"] not in VERDICTS:
        raise FilterError(f"verdict must be one of {', '.join(VERDICTS)}")
    since = _moment(values["since"], "from")
    until = _moment(values["until"], "until")
    if since is None and values["range"]:
        since = (time.time() if now is None else now) - RANGES[values["range"]]
    query = EventQuery(
        since=since,
        until=until,
        agent=values["agent"] or None,
        server=values["server"] or None,
        tool=values["tool"] or None,
        types=(values["type"],) if values["type"] else (),
        verdict=values["verdict"] or None,
        text=values["text"] or None,
    )
    return AuditFilters(values, query)
