"""The result checks for a configuration, sharing one taint store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bastion.alerts.model import AlertEmitter
from bastion.audit.events import AuditEvent
from bastion.guard.results.check import ResultsCheck
from bastion.guard.results.config import ResultsConfig
from bastion.guard.results.provenance import ProvenanceCheck
from bastion.guard.results.request_store import MemoryRequestStore
from bastion.guard.results.requested import RequestedActionCheck
from bastion.guard.results.taint import MemoryTaintStore, TaintStore

__all__ = ["ResultChecks", "result_checks"]


@dataclass(frozen=True, slots=True)
class ResultChecks:
    """The checks, sharing one taint store; `requested` holds calls doing what injected text asked."""

    results: ResultsCheck
    provenance: ProvenanceCheck
    taints: TaintStore
    requested: RequestedActionCheck


def result_checks(
    config: ResultsConfig,
    untrusted: Mapping[str, bool],
    *,
    record: Callable[[AuditEvent], None] | None = None,
    alerts: AlertEmitter | None = None,
) -> ResultChecks:
    """The checks for `config`; `untrusted` is each server's `untrusted:` setting."""
    provenance = config.provenance
    taints = MemoryTaintStore(window=provenance.window, max_values=provenance.max_values)
    requested = RequestedActionCheck(
        config, MemoryRequestStore(window=provenance.window, max_values=provenance.max_values)
    )
    names = frozenset(name for name, flag in untrusted.items() if flag)
    check = ResultsCheck(config, untrusted=names, taints=taints, record=record, alerts=alerts, requests=requested)
    return ResultChecks(check, ProvenanceCheck(config, taints), taints, requested)
