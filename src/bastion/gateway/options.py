"""What a caller may plug into a gateway besides its configuration: `GatewayOptions`.

The commands pass a local principal and the servers `bastion wrap` started early; tests pass
their own checks, event sinks and resolvers. Every option defaults to what `bastion up` runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from bastion.approvals.events import EventSink
    from bastion.guard.pipeline import Check
    from bastion.model import Principal
    from bastion.observability.wiring import GatewayObservability
    from bastion.runtime.egress.proxy import ResolverForTests
    from bastion.runtime.events import RuntimeEventSink
    from bastion.runtime.prestart import PrestartedServer


@dataclass(frozen=True)
class GatewayOptions:
    """The parts of a gateway given to it rather than built from the configuration."""

    checks: Sequence[Check] | None = None
    """The guard pipeline's checks instead of the configured ones (then no pin store, rate
    limits or result checks are built either)."""
    local_principal: Principal | None = None
    """The one agent `bastion wrap` serves on stdio; set, no dashboard is built."""
    errlog: TextIO | None = None
    """Where launched servers' stderr goes (None: this process's stderr)."""
    events: EventSink | None = None
    """Approval events' own sink, besides the event bus (None: the log)."""
    runtime_sink: RuntimeEventSink | None = None
    """Runtime events' own sink, besides the event bus (None: the log)."""
    test_resolver: ResolverForTests | None = None
    """How the egress proxies resolve names, in tests."""
    observability: GatewayObservability | None = None
    """Metrics and traces (None: built from the configuration)."""
    prestarted: Mapping[str, PrestartedServer] = field(default_factory=dict)
    """Servers already started by `bastion wrap` (`runtime.prestart`), adopted by their upstreams."""
