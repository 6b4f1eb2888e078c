"""payment: named dangerous actions judged from the tool name's words and the argument content."""

from __future__ import annotations

from collections.abc import Iterator

from bastion.guard.policy.catalogue.base import CallView, Entry, Finding

ENTRIES: tuple[Entry, ...] = ()


def detect(call: CallView) -> Iterator[Finding]:
    return iter(())
