"""The shapes every catalogue family shares: entries, findings, the scan context and the call view."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

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


_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def name_words(name: str) -> frozenset[str]:
    """The lower-case words of an identifier: `createRefund`, `create_refund`, `git-push` -> words."""
    return frozenset(w.lower() for w in _WORD.findall(name))


@dataclass
class CallView:
    """What detectors see of one call: the tool, its words, and every value of its arguments."""

    tool: str
    server: str
    arguments: Mapping[str, Any]
    context: ScanContext
    strings: list[StringValue] = field(default_factory=list)
    scalars: list[ScalarValue] = field(default_factory=list)

    @cached_property
    def words(self) -> frozenset[str]:
        """Words of the tool name and the server name."""
        return name_words(self.tool) | name_words(self.server)

    @cached_property
    def tool_words(self) -> frozenset[str]:
        return name_words(self.tool)

    def by_key(self, *keys: str) -> Iterator[StringValue]:
        """Strings whose key (lower-cased, without `_`/`-`) is one of `keys`."""
        wanted = {k.replace("_", "").lower() for k in keys}
        for s in self.strings:
            if s.key.replace("_", "").replace("-", "").lower() in wanted:
                yield s

    def first(self, *keys: str) -> StringValue | None:
        return next(self.by_key(*keys), None)

    def scalar(self, *keys: str) -> ScalarValue | None:
        wanted = {k.replace("_", "").lower() for k in keys}
        for s in self.scalars:
            if s.key.replace("_", "").replace("-", "").lower() in wanted:
                return s
        return None


def entry(id: str, title: str, description: str, severity: Severity, default: Decision = Decision.DENY) -> Entry:
    """An `Entry` whose family is the part of `id` before the first dot."""
    return Entry(id, id.split(".", 1)[0], title, description, severity, default)
