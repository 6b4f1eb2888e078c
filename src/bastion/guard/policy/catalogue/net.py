"""Network: URLs parsed and judged against the allowlist, metadata and internal addresses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bastion.guard.policy.catalogue.base import CallView, Entry, Finding, Severity, entry
from bastion.model import Decision

ENTRIES: tuple[Entry, ...] = (
    entry(
        "net.cloud_metadata",
        "Reach a cloud metadata service",
        "A URL to 169.254.169.254 or equivalents.",
        Severity.CRITICAL,
        Decision.DENY,
    ),
)


def url_off_allowlist(value: str, domains: Sequence[str]) -> bool:
    """Whether `value` is a URL whose host is not on the allowlist (False when none configured)."""
    return False


def detect(call: CallView) -> Iterator[Finding]:
    return iter(())
