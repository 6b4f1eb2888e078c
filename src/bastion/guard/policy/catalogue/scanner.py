"""`scan`: run every family's detector over one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.guard.policy.catalogue.base import Finding, ScanContext
from bastion.guard.policy.catalogue.registry import DETECTORS
from bastion.guard.policy.catalogue.view import CallView
from bastion.guard.policy.catalogue.walker import walk


def scan(tool: str, arguments: Mapping[str, Any], context: ScanContext) -> list[Finding]:
    """The catalogue entries seen in a call, at most one finding per (entry, path)."""
    args: Mapping[str, Any] = arguments if isinstance(arguments, Mapping) else {"arguments": arguments}
    strings, scalars = walk(args)
    call = CallView(tool if isinstance(tool, str) else str(tool), context.server, args, context, strings, scalars)
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for detect in DETECTORS:
        for f in detect(call):
            if (f.entry.id, f.path) not in seen:
                seen.add((f.entry.id, f.path))
                findings.append(f)
    return findings
