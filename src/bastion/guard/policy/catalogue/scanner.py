"""Scan one call: walk its arguments once into a `CallView`, run every family's detector over it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bastion.guard.policy.catalogue.base import Finding, ScanContext
from bastion.guard.policy.catalogue.registry import DETECTORS
from bastion.guard.policy.catalogue.view import CallView
from bastion.guard.policy.catalogue.walker import walk

PRESCREEN = os.environ.get("BASTION_POLICY_PRESCREEN", "1") != "0"
"""Whether families skip the work their pre-screens prove useless (`BASTION_POLICY_PRESCREEN=0` turns them off, for
an A/B measurement; the verdicts are the same either way, as the differential tests check)."""


def scan(tool: str, arguments: Mapping[str, Any], context: ScanContext) -> list[Finding]:
    """The catalogue entries seen in a call, at most one finding per (entry, path)."""
    return scan_call(tool, arguments, context, PRESCREEN)


def scan_call(tool: str, arguments: Mapping[str, Any], context: ScanContext, prescreen: bool) -> list[Finding]:
    """`scan`, with the families' pre-screens on or off."""
    args: Mapping[str, Any] = arguments if isinstance(arguments, Mapping) else {"arguments": arguments}
    strings, scalars = walk(args)
    call = CallView(
        tool if isinstance(tool, str) else str(tool), context.server, args, context, strings, scalars, prescreen
    )
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for detect in DETECTORS:
        for f in detect(call):
            key = (f.entry.id, f.path)
            if key not in seen:
                seen.add(key)
                findings.append(f)
    return findings
