"""Issue 7's scale-out acceptance test: two gateway replicas, one PostgreSQL database, one Redis.

Two real `bastion up` processes (replicas A and B, loopback ports of their own, the same
configuration) share a private PostgreSQL schema (`database_url`: tokens, approvals, pins
and the audit log) and a private Redis (`limits.storage`), in front of a real stdio
upstream (mcp-server-time). Eight agents (tokens made with the `bastion token create`
command against the shared database, run in the test's process while B starts) send 1,000
tools/call through real `mcp` SDK clients over Streamable HTTP, each agent alternating
between the replicas, 16 sessions at once:

- the per-agent limit holds across both replicas: the greedy agent (its own rate,
  `agents.greedy-bot`) gets exactly its limit through in total, whichever replica took
  each call, though each replica let some through; the seven others are never refused;
- one call (policy `ask`) held on replica B is approved through replica A's admin API
  and completes on B;
- afterwards `bastion audit export` shows each call's `call.requested` exactly once
  (refused ones included) and `bastion audit verify` exits 0.

Redis going away (deny and local fallbacks, alert, recovery) is test_rate_limits.py's.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
from click.testing import CliRunner
from mcp import Client

from bastion.cli.main import main
from tests.e2e.clients import connect
from tests.e2e.conftest import STARTUP_TIMEOUT, VENV_BIN, RunningGateway, write_config
from tests.e2e.redis_server import private_redis
from tests.e2e.replicas import approval_feed, last_line, start_replica, text_of
from tests.unit.audit.postgres import postgres_schema

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AGENTS = 8
CALLS = 1000
GREEDY = "greedy-bot"
GREEDY_RATE = 20
# An hour's window, not a minute's: the count must not refill during a run on a slow host,
# so "exactly the limit" is exact (the moving window admits at most N in any window; Redis
# keeps one counter, updated atomically by a Lua script, for both replicas).
GREEDY_LIMIT = f"{GREEDY_RATE}/hour"
PER_AGENT = "300/minute"  # above the ~125 calls any other agent makes in a run
HELD_ZONE = "Asia/Tokyo"
TOOL = "get_current_time"


@dataclass(frozen=True)
class Call:
    note: str
    agent: str
    replica: int  # 0 = A, 1 = B


@dataclass
class Outcome:
    call: Call
    refusal: str | None  # the refusal text, None when the call went through


def plan(agents: list[str]) -> list[Call]:
    """1,000 calls less the held one: call i by agent i % 8, each agent alternating A and B."""
    return [Call(f"c{i}", agents[i % AGENTS], (i // AGENTS) % 2) for i in range(CALLS - 1)]


async def run_session(client: Client, calls: list[Call], outcomes: list[Outcome]) -> None:
    for call in calls:
        result = await client.call_tool(TOOL, {"timezone": "UTC", "note": call.note})
        outcomes.append(Outcome(call, text_of(result) if result.is_error else None))


async def start_b(replicas: list[RunningGateway], config: Path, token: str) -> None:
    replicas.append(await anyio.to_thread.run_sync(start_replica, config, token))


def cli_in_process(gateway: RunningGateway, *args: str) -> str:
    """The `bastion` command run in this process (the same code; no 3 s interpreter start on a
    loaded host): the token it printed on its last line."""
    result = CliRunner().invoke(main, [*args, "--config", str(gateway.config_path)])
    assert result.exit_code == 0, result.output
    return last_line(result.output)


def create_tokens(a: RunningGateway, names: list[str]) -> tuple[dict[str, str], str]:
    """An agent token for each name (`bastion token create`) and an approver's admin token."""
    tokens = {name: cli_in_process(a, "token", "create", "--agent", name) for name in names}
    return tokens, cli_in_process(a, "admin", "token", "create", "--name", "ops", "--role", "approver")


async def test_two_replicas_one_database_one_redis_1000_calls(tmp_path: Path) -> None:
    with postgres_schema() as url, private_redis(tmp_path / "redis") as redis:
        shared = {
            "database_url": url,
            "approvals": {"wait": 60},
            "limits": {"storage": redis.url, "per_agent": PER_AGENT, "agents": {GREEDY: GREEDY_LIMIT}},
            "policy": {
                "rules": [
                    {
                        "name": "hold-tokyo",
                        "match": {"server": "time", "tool": TOOL},
                        "when": {"arguments.timezone": {"equals": HELD_ZONE}},
                        "action": "ask",
                    }
                ]
            },
        }
        servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
        a = start_replica(write_config(tmp_path / "a", servers, **shared))
        replicas: list[RunningGateway] = [a]
        try:
            names = [f"agent-{n}" for n in range(AGENTS - 1)] + [GREEDY]
            with anyio.fail_after(STARTUP_TIMEOUT + 30):
                async with anyio.create_task_group() as tg:
                    # Started after A: the token table is not empty, so B prints no first-run token.
                    config_b = write_config(tmp_path / "b", servers, **shared)
                    tg.start_soon(start_b, replicas, config_b, a.token)
                    # Meanwhile the tokens, through A's configuration (the shared database).
                    tokens, admin_token = await anyio.to_thread.run_sync(create_tokens, a, names)
            b = replicas[1]
            assert a.base_url != b.base_url
            calls = plan(names)
            outcomes: list[Outcome] = []
            held_call = Call(f"c{CALLS - 1}", names[0], 1)
            with anyio.fail_after(150):
                async with approval_feed(url) as feed, AsyncExitStack() as stack:
                    sessions: dict[tuple[str, int], Client] = {}
                    for name in names:
                        for r, replica in enumerate(replicas):
                            sessions[name, r] = await stack.enter_async_context(
                                connect(replica, "time", token=tokens[name])
                            )
                    held_result: list[tuple[bool, str]] = []
                    approval_ids: list[str] = []

                    async def held_on_b() -> None:
                        async with connect(b, "time", token=tokens[held_call.agent]) as client:
                            result = await client.call_tool(TOOL, {"timezone": HELD_ZONE, "note": held_call.note})
                        held_result.append((result.is_error, text_of(result)))

                    async def approve_through_a() -> None:
                        approval_id = await feed.next_id()  # created by B
                        approval_ids.append(approval_id)
                        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {admin_token}"}) as http:
                            answer = await http.post(
                                f"{a.base_url}/admin/api/approvals/{approval_id}/approve", json={"reason": "scale-out"}
                            )
                        assert answer.status_code == 200, answer.text
                        assert await feed.next_id() == approval_id  # decided

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(held_on_b)
                        tg.start_soon(approve_through_a)
                        for (name, r), client in sessions.items():
                            mine = [c for c in calls if c.agent == name and c.replica == r]
                            tg.start_soon(run_session, client, mine, outcomes)
        finally:
            for replica in reversed(replicas):
                replica.stop()

        exported = CliRunner().invoke(main, ["audit", "export", "--format", "jsonl", "--config", str(a.config_path)])
        assert exported.exit_code == 0, exported.output
        events = [json.loads(line) for line in exported.stdout.splitlines() if line.strip()]
        verified = a.cli("audit", "verify")  # a process of its own: its exit status is the check

    # The held call: held on B, approved through A, completed on B.
    [(held_error, held_text)] = held_result
    assert held_error is False, held_text
    assert HELD_ZONE in held_text
    [approval_id] = approval_ids
    decided = [e for e in events if e["type"] == "approval.decided"]
    assert [(e["approval_id"], e["via"]) for e in decided] == [(approval_id, "api")]

    # 999 planned calls plus the held one: 1,000 in all.
    assert len(outcomes) == CALLS - 1
    others = [o for o in outcomes if o.call.agent != GREEDY]
    assert [o.refusal for o in others if o.refusal is not None] == []
    greedy = [o for o in outcomes if o.call.agent == GREEDY]
    allowed = [o for o in greedy if o.refusal is None]
    # One counter in Redis for both replicas: the limit in total, not the limit on each.
    assert len(allowed) == GREEDY_RATE, Counter(o.call.replica for o in allowed)
    assert {o.call.replica for o in allowed} == {0, 1}, "each replica let some of the greedy agent's calls through"
    refused = [o for o in greedy if o.refusal is not None]
    assert {o.call.replica for o in refused} == {0, 1}
    for o in refused:
        assert f"rate limit agents.{GREEDY} {GREEDY_LIMIT} exceeded for agent '{GREEDY}'" in (o.refusal or ""), o

    # Every call's call.requested exactly once, refused ones included; one correlation id each.
    made = {o.call.note for o in outcomes} | {held_call.note}
    assert len(made) == CALLS
    requested = [e for e in events if e["type"] == "call.requested" and e.get("tool") == TOOL]
    by_note = Counter(e["arguments"]["note"] for e in requested)
    assert set(by_note) == made
    assert set(by_note.values()) == {1}, "each call requested exactly once"
    assert len({e["correlation_id"] for e in requested}) == CALLS
    completed = Counter(e["correlation_id"] for e in events if e["type"] == "call.completed" and e.get("tool") == TOOL)
    assert set(completed) == {e["correlation_id"] for e in requested}
    assert set(completed.values()) == {1}, "each call completed exactly once"
    limited = [e for e in events if e["type"] == "rate.limited"]
    assert len(limited) == len(refused)
    assert {e["agent"] for e in limited} == {GREEDY}
    assert sum(e["type"] == "config.loaded" for e in events) == 2
    assert verified.returncode == 0, verified.stderr
