"""The shapes every catalogue family shares: entries, findings, the scan context and the call view."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bastion.model import Decision


class Severity(enum.StrEnum):
    """How bad the action is when it happens; ordered LOW < MEDIUM < HIGH < CRITICAL."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True, slots=True)
class Entry:
    """One named dangerous action of the catalogue.

    `default` is what the `recommended` profile does when the entry is found (DENY or ASK).
    """

    id: str
    family: str
    title: str
    description: str
    severity: Severity
    default: Decision


@dataclass(frozen=True, slots=True)
class Finding:
    """A catalogue entry seen in a call: what was seen (`reason`) and where (`path`)."""

    entry: Entry
    reason: str
    path: str


@dataclass(frozen=True, slots=True)
class ScanContext:
    """The deployment settings a scan depends on.

    Empty `allowed_roots` / `allowed_domains` mean "not configured": root and allowlist checks
    then do not apply (sensitive paths and metadata addresses still do). The hints are the tool's
    annotations as the server declared them in its tool list, never as the request claims.
    """

    allowed_roots: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    server: str = ""
    read_only_hint: bool | None = None
    destructive_hint: bool | None = None


@dataclass(frozen=True, slots=True)
class StringValue:
    """A string found in the arguments, with its path (`arguments.steps[2].cmd`) and its key."""

    path: str
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ScalarValue:
    """A number or boolean found in the arguments."""

    path: str
    key: str
    value: float | bool


def entry(id: str, title: str, description: str, severity: Severity, default: Decision = Decision.DENY) -> Entry:
    """An `Entry` whose family is the part of `id` before the first dot."""
    return Entry(id, id.split(".", 1)[0], title, description, severity, default)
