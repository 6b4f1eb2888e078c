"""How the gateway plugs its observers in: one object, built from the config, asked four things.

`observe(store)` puts the event bus in front of the audit store, `check_timer` goes to the
guard pipeline, `attach(...)` gives the gauges what to read and builds the `/metrics`
endpoint, and `listener_wanted` says where `metrics.listen` wants a socket of its own (the
gateway serves it beside its own, and routes what arrives there with `serves_listener`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from bastion.audit.store import AuditStore
from bastion.audit.writer_front import WriterFront
from bastion.config_errors import split_listen
from bastion.observability.bus import ObservedAuditStore
from bastion.observability.metrics import GatewayMetrics, LiveReadings, ServerReading
from bastion.observability.metrics_http import AgentAuthenticator, MetricsEndpoint, MetricsOnlyApp

if TYPE_CHECKING:
    from starlette.types import Scope

    from bastion.admin.tokens import AdminTokenStore
    from bastion.approvals.store import ApprovalStore
    from bastion.config import BastionConfig
    from bastion.guard.pipeline import CheckTimer


class GatewayObservability:
    """The metrics of one gateway (None when `metrics.enabled` is off)."""

    def __init__(self, config: BastionConfig) -> None:
        self.config = config
        settings = config.metrics
        self.metrics = GatewayMetrics(config.servers, per_agent=settings.per_agent) if settings.enabled else None
        self.endpoint: MetricsEndpoint | None = None
        self.listener: MetricsOnlyApp | None = None
        self.listener_address: tuple[str, int] | None = None
        self.store: ObservedAuditStore | None = None

    def observe(self, store: AuditStore) -> AuditStore:
        """`store`, with the metrics subscribed to every event it takes."""
        if self.metrics is None:
            return store
        self.store = ObservedAuditStore(store, [self.metrics])
        return self.store

    @property
    def check_timer(self) -> CheckTimer | None:
        return self.metrics.check_timed if self.metrics is not None else None

    def attach(
        self,
        servers: Callable[[], Iterable[ServerReading]],
        approvals: ApprovalStore,
        admin_tokens: AdminTokenStore,
        agents: AgentAuthenticator,
    ) -> None:
        """Read the gauges through `servers` and `approvals`; serve `/metrics` to `admin_tokens`."""
        if self.metrics is None:
            return
        from bastion.approvals.model import ApprovalState

        audit = self.store.inner if self.store is not None else None
        self.metrics.attach(
            LiveReadings(
                servers=servers,
                approvals_pending=lambda: len(approvals.list(ApprovalState.PENDING)),
                audit_queue_depth=lambda: audit.queue_depth if isinstance(audit, WriterFront) else 0,
            )
        )
        self.endpoint = MetricsEndpoint(
            self.metrics.registry, admin=lambda token: admin_tokens.verify(token) is not None, agents=agents
        )
        self.listener = MetricsOnlyApp(MetricsEndpoint(self.metrics.registry))

    @property
    def listener_wanted(self) -> tuple[str, int] | None:
        """Where `metrics.listen` asks for a listener of its own (None: not configured)."""
        listen = self.config.metrics.listen
        if self.metrics is None or listen is None:
            return None
        return split_listen(listen)

    def listening_on(self, address: tuple[str, int] | None) -> None:
        """The `metrics.listen` socket's bound address (None once it is closed)."""
        self.listener_address = address

    def serves_listener(self, scope: Scope) -> bool:
        """Whether this request came in on the `metrics.listen` socket."""
        server = scope.get("server")
        return self.listener_address is not None and server is not None and server[1] == self.listener_address[1]
