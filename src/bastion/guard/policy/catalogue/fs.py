"""Files: paths normalised and judged against the allowed roots and a list of sensitive paths."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bastion.guard.policy.catalogue.base import CallView, Entry, Finding, Severity, entry
from bastion.model import Decision

ENTRIES: tuple[Entry, ...] = (
    entry(
        "fs.write_outside_roots",
        "Write outside the allowed roots",
        "A write to a path outside the roots.",
        Severity.HIGH,
        Decision.DENY,
    ),
)


def path_outside_roots(value: str, roots: Sequence[str]) -> bool:
    """Whether `value`, normalised, lies outside every root (False when no roots are configured)."""
    return False


def sensitive_path(value: str) -> str | None:
    """The kind of sensitive path `value` names (".ssh", "/etc/shadow", ...), or None."""
    return None


def detect(call: CallView) -> Iterator[Finding]:
    return iter(())
