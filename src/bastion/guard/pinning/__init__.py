"""Tool pinning: each tool's definition is pinned on first sight; a later change, or hidden
instructions found on first sight, hold the tool back until an operator accepts it.

See docs/pinning.md.
"""

from __future__ import annotations

from bastion.guard.pinning.accept import accept_tools
from bastion.guard.pinning.check import PinAction, PinningCheck
from bastion.guard.pinning.events import LoggingPinEventSink, PinEvent, PinEventSink
from bastion.guard.pinning.fingerprint import PINNED_FIELDS, canonical_json, changed_fields, fingerprint
from bastion.guard.pinning.scanner import Finding, scan_definition, scan_text
from bastion.guard.pinning.sqlite_store import SqlitePinStore
from bastion.guard.pinning.store import PinRecord, PinState, PinStore, PinStoreError

__all__ = [
    "PINNED_FIELDS",
    "Finding",
    "LoggingPinEventSink",
    "PinAction",
    "PinEvent",
    "PinEventSink",
    "PinRecord",
    "PinState",
    "PinStore",
    "PinStoreError",
    "PinningCheck",
    "SqlitePinStore",
    "accept_tools",
    "canonical_json",
    "changed_fields",
    "fingerprint",
    "scan_definition",
    "scan_text",
]
