"""Shell: commands parsed with bashlex, through quoting, `sh -c`, substitutions and pipes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bastion.guard.policy.catalogue.base import CallView, Entry, Finding, Severity, entry
from bastion.model import Decision

ENTRIES: tuple[Entry, ...] = (
    entry(
        "shell.pipe_to_interpreter",
        "Pipe into an interpreter",
        "Downloaded or decoded text piped into a shell.",
        Severity.CRITICAL,
        Decision.DENY,
    ),
)


@dataclass(frozen=True, slots=True)
class ShellFinding:
    """A dangerous shell construct: the entry id and what was seen."""

    entry_id: str
    reason: str


def shell_findings(text: str) -> list[ShellFinding]:
    """The dangerous constructs of the shell command `text` (empty if none or not a command)."""
    return []


def detect(call: CallView) -> Iterator[Finding]:
    return iter(())
