"""The result checks for a configuration, sharing one taint store: in this process's memory, or
in the Redis `limits.storage` names when it names one (shared by every replica)."""

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
from bastion.model import ToolCall

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
    shared_url: str | None = None,
    sinks: Callable[[ToolCall], bool | None] | None = None,
) -> ResultChecks:
    """Both checks for `config`; `untrusted` is each server's `untrusted:` setting, `shared_url` the
    Redis to remember in (None: this process's memory), `sinks` the policy's `sink:` rules."""
    provenance = config.provenance
    taints: TaintStore
    if shared_url is not None:
        from bastion.guard.results.redis_taint import RedisTaintStore

        taints = RedisTaintStore(
            shared_url,
            window=provenance.window,
            max_values=provenance.max_values,
            max_session_values=provenance.max_session_values,
        )
    else:
        taints = MemoryTaintStore(
            window=provenance.window,
            max_values=provenance.max_values,
            max_session_values=provenance.max_session_values,
        )
    names = frozenset(name for name, flag in untrusted.items() if flag)
    requested = RequestedActionCheck(
        config, MemoryRequestStore(window=provenance.window, max_values=provenance.max_values)
    )
    check = ResultsCheck(config, untrusted=names, taints=taints, record=record, alerts=alerts, requests=requested)
    return ResultChecks(check, ProvenanceCheck(config, taints, sinks), taints, requested)
