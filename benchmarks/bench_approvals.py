"""Approvals and alerts: what they cost on the data path, and how fast a decision releases a call.

Run: .venv/bin/python benchmarks/bench_approvals.py [N]
Printed, not asserted. Three figures, each against a baseline measured in the same run:
- release latency: a decision committed by another connection (as the CLI does) until the
  waiting call returns, vs the store's poll interval;
- an `ask` call passed by an always-allow rule (SQLite lookup) vs a call no check holds;
- `AlertDispatcher.emit` (queueing, nothing sent) vs a no-op function call.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio

from bastion.alerts.config import AlertsConfig
from bastion.alerts.dispatcher import AlertDispatcher
from bastion.alerts.model import Alert, AlertKind
from bastion.approvals.config import ApprovalsConfig
from bastion.approvals.events import ListEventSink
from bastion.approvals.gate import ApprovalGate
from bastion.approvals.sqlite_store import DEFAULT_POLL_INTERVAL, SqliteApprovalStore
from bastion.guard.pipeline import GuardPipeline
from bastion.model import Decision, Principal, ToolCall, Verdict


class Ask:
    name = "policy"

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        return Verdict(Decision.ASK, "risky")


class Pass:
    name = "policy"

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        return None


def _call(n: int) -> ToolCall:
    return ToolCall(f"c{n}", Principal("bot"), "db", "query", {"sql": "SELECT * FROM customers", "limit": n % 3})


async def one_release(store: SqliteApprovalStore, other: SqliteApprovalStore, n: int) -> float:
    """Seconds from a commit by `other` (another connection, like the CLI) to the waiter's return."""
    approval = store.create(
        agent="bot", server="db", tool="q", arguments={"n": n}, rule="r", reason="x", expire_after=60
    )
    go = threading.Event()
    decided_at: list[float] = []
    returned_at: list[float] = []

    def decide() -> None:
        go.wait()
        other.decide(approval.id, approve=True, decided_by="bench")
        decided_at.append(time.perf_counter())

    async def wait() -> None:
        await store.wait_for_decision(approval.id, 10)
        returned_at.append(time.perf_counter())

    thread = threading.Thread(target=decide)
    thread.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.005)  # let the waiter start watching before the decision
        go.set()
    thread.join()
    return returned_at[0] - decided_at[0]


async def release_latency(folder: Path, rounds: int) -> list[float]:
    store = SqliteApprovalStore(folder / "approvals.db")
    other = SqliteApprovalStore(folder / "approvals.db")
    latencies = [await one_release(store, other, n) for n in range(rounds)]
    store.close()
    other.close()
    return latencies


async def pipeline_cost(folder: Path, calls: int) -> tuple[float, float]:
    store = SqliteApprovalStore(folder / "rules.db")
    gate = ApprovalGate(store, ApprovalsConfig(wait=0), ListEventSink())
    for n in range(3):
        await gate.resolve(_call(n), Verdict(Decision.ASK, "risky", "policy"))
    for approval in store.list():
        store.decide(approval.id, approve=True, decided_by="bench", always=True)
    held = GuardPipeline([Ask()], approvals=gate)
    plain = GuardPipeline([Pass()])
    timings = {"held": 0.0, "plain": 0.0}
    for block in range(10):
        for name, pipeline in (("plain", plain), ("held", held)) if block % 2 else (("held", held), ("plain", plain)):
            began = time.perf_counter()
            for n in range(calls // 10):
                verdict = await pipeline.evaluate(_call(n))
                assert verdict.allowed
            timings[name] += time.perf_counter() - began
    store.close()
    return timings["plain"] / calls, timings["held"] / calls


def emit_cost(count: int) -> tuple[float, float]:
    config = AlertsConfig.model_validate({"webhooks": [{"url": "http://127.0.0.1:9/"}], "queue_size": count})
    dispatcher = AlertDispatcher(config, ListEventSink())
    alert = Alert(AlertKind.CALL_DENIED, "denied", {"tool": "x"})

    def noop(alert: Alert) -> None:
        return None

    began = time.perf_counter()
    for _ in range(count):
        noop(alert)
    baseline = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(count):
        dispatcher.emit(alert)
    return baseline / count, (time.perf_counter() - began) / count


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        latencies = sorted(await release_latency(folder, rounds))
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        print(f"release latency over {rounds} decisions by another connection:")
        print(
            f"  median {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms "
            f"(poll interval {DEFAULT_POLL_INTERVAL * 1000:.0f} ms; ratio median/interval "
            f"{statistics.median(latencies) / DEFAULT_POLL_INTERVAL:.2f})"
        )
        plain, held = await pipeline_cost(folder, rounds * 40)
        print(f"pipeline per call over {rounds * 40} calls:")
        print(
            f"  no hold {plain * 1e6:.1f} us, ask + always-allow rule {held * 1e6:.1f} us (ratio {held / plain:.1f}x)"
        )
    baseline, emit = emit_cost(rounds * 400)
    print(f"alert emit per call over {rounds * 400} alerts:")
    print(f"  no-op call {baseline * 1e9:.0f} ns, emit {emit * 1e9:.0f} ns (ratio {emit / baseline:.1f}x)")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 100)
