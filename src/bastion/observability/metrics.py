"""Prometheus metrics: counters and histograms fed by the event bus, gauges read when scraped.

Every metric lives in the gateway's own `CollectorRegistry` (not the process-wide default),
so several gateways in one process (tests, `bastion wrap` beside a library user) never mix
their figures. Label values are bounded: server names come from the configuration, tool
names are kept per server up to `MAX_TOOLS_PER_SERVER` (then `_other`: an agent calling
made-up tool names cannot grow the series without end), agent names only with
`metrics.per_agent`, and no argument ever becomes a label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bastion.audit.events import AuditEvent, CallCompleted, EgressBlocked, VerdictReached
from bastion.observability.fast_metrics import CounterChild, FastCounter, FastHistogram, HistogramChild
from bastion.observability.outcomes import OUTCOMES, CallOutcomes
from bastion.observability.readings import LiveReadings, ServerReading

# The `_created` series double every counter and histogram for a figure Prometheus does not need.
disable_created_metrics()  # type: ignore[no-untyped-call]

MAX_TOOLS_PER_SERVER = 256
OTHER = "_other"
NO_AGENT = "_none"

# Client-visible call latency: a local tool answers in milliseconds, a held call may wait minutes.
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
GUARD_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)
WRITE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class GatewayMetrics:
    """The gateway's metrics: an event-bus subscriber, a guard-timing observer and a scrape target."""

    def __init__(self, servers: Iterable[str], *, per_agent: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.per_agent = per_agent
        self._servers = frozenset(servers)
        self._tools: dict[str, set[str]] = {}
        self._outcomes = CallOutcomes()
        # The labelled children, looked up once: `labels()` checks and converts the label values on every call.
        self._check_children: dict[str, HistogramChild] = {}
        self._call_children: dict[tuple[str, ...], CounterChild] = {}
        self._duration_children: dict[str, HistogramChild] = {}
        call_labels = ["server", "tool", "outcome", *(["agent"] if per_agent else [])]
        self.tool_calls = FastCounter(
            "bastion_tool_calls",
            "Tool calls, by how they ended (allowed, denied, held, approved, failed, rate_limited).",
            call_labels,
            registry=self.registry,
        )
        self.call_duration = FastHistogram(
            "bastion_tool_call_duration_seconds",
            "Client-visible duration of tool calls, from the request reaching Bastion to its answer.",
            ["server"],
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self.guard_duration = FastHistogram(
            "bastion_guard_duration_seconds",
            "Time each guard check took on a tool call.",
            ["check"],
            buckets=GUARD_BUCKETS,
            registry=self.registry,
        )
        self.egress_blocked = FastCounter(
            "bastion_egress_blocked",
            "Connections a sandboxed server tried that the egress proxy refused.",
            ["server"],
            registry=self.registry,
        )
        self.audit_events = FastCounter("bastion_audit_events", "Audit events recorded.", registry=self.registry)
        self.audit_write = FastHistogram(
            "bastion_audit_write_seconds",
            "Time a write-ahead (durable) audit record took to commit.",
            buckets=WRITE_BUCKETS,
            registry=self.registry,
        )
        for server in self._servers:
            self.call_duration.labels(server)
            self.egress_blocked.labels(server)

    def attach(self, readings: LiveReadings) -> None:
        """Read the gauges from `readings` at each scrape."""
        self.registry.register(_LiveCollector(readings))

    # the event bus

    observes_unrecorded = False
    """Counted are the events the audit log took."""

    def observe(self, event: AuditEvent) -> None:
        self.audit_events.inc()
        if isinstance(event, VerdictReached):
            self._outcomes.saw_verdict(event)
        elif isinstance(event, CallCompleted):
            if event.method == "tools/call":
                self._call_completed(event)
        elif isinstance(event, EgressBlocked):
            self.egress_blocked.labels(self._server(event.server)).inc()

    def observe_write(self, seconds: float) -> None:
        self.audit_write.observe(seconds)

    def store_failing(self, where: str) -> None:
        """Not counted here: the `audit_store_failing` alert and `/readyz` report it."""

    # the guard pipeline

    def check_timed(self, check: str, seconds: float) -> None:
        child = self._check_children.get(check)
        if child is None:  # check names are the pipeline's: a handful
            child = self._check_children[check] = self.guard_duration.labels(check)
        child.observe(seconds)

    def _call_completed(self, event: CallCompleted) -> None:
        server = self._server(event.server)
        labels: tuple[str, ...] = (server, self._tool(server, event.tool), self._outcomes.outcome(event))
        if self.per_agent:
            labels += (event.agent or NO_AGENT,)
        counter = self._call_children.get(labels)
        if counter is None:  # bounded as the series are (see the module docstring)
            counter = self._call_children[labels] = self.tool_calls.labels(*labels)
        counter.inc()
        duration = self._duration_children.get(server)
        if duration is None:
            duration = self._duration_children[server] = self.call_duration.labels(server)
        duration.observe(event.latency_ms / 1000.0)

    def _server(self, name: str | None) -> str:
        return name if name in self._servers else OTHER

    def _tool(self, server: str, tool: str | None) -> str:
        if not tool:
            return OTHER
        known = self._tools.setdefault(server, set())
        if tool in known:
            return tool
        if len(known) >= MAX_TOOLS_PER_SERVER:
            return OTHER
        known.add(tool)
        return tool


class _LiveCollector(Collector):
    """The gauges, read from the running gateway when Prometheus scrapes."""

    def __init__(self, readings: LiveReadings) -> None:
        self.readings = readings

    def describe(self) -> Iterable[Metric]:
        return self._families({}, None, None)

    def collect(self) -> Iterable[Metric]:
        servers = {reading.name: reading for reading in self.readings.servers()}
        return self._families(servers, self.readings.approvals_pending(), self.readings.audit_queue_depth())

    @staticmethod
    def _families(servers: Mapping[str, ServerReading], pending: int | None, queued: int | None) -> list[Metric]:
        up = GaugeMetricFamily("bastion_upstream_up", "1 when the upstream server is up.", labels=["server"])
        restarts = CounterMetricFamily(
            "bastion_upstream_restarts", "Times the supervisor restarted the server.", labels=["server"]
        )
        sessions = GaugeMetricFamily(
            "bastion_agent_sessions", "Agent sessions connected to the server.", labels=["server"]
        )
        for name, reading in servers.items():
            up.add_metric([name], 1.0 if reading.up else 0.0)
            restarts.add_metric([name], float(reading.restarts))
            sessions.add_metric([name], float(reading.agent_sessions))
        approvals = GaugeMetricFamily("bastion_approvals_pending", "Held calls waiting for a decision.")
        queue = GaugeMetricFamily("bastion_audit_queue_depth", "Audit events queued, not yet committed.")
        if pending is not None:
            approvals.add_metric([], float(pending))
        if queued is not None:
            queue.add_metric([], float(queued))
        return [up, restarts, sessions, approvals, queue]


__all__ = ["OUTCOMES", "GatewayMetrics", "LiveReadings", "ServerReading"]
