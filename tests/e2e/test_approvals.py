"""Held calls: a real agent waits while a person decides from a second process (the CLI) or the API.

The gateway runs in-process so a test check can ask for approval (the policy engine will);
the upstream (mcp-server-time), the HTTP front door, the agent client, the `bastion approvals`
CLI (a subprocess) and the webhook receiver are all real.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from bastion.admin.tokens import Role
from bastion.approvals.events import ApprovalExpired, ApprovalRequested, ListEventSink
from bastion.approvals.model import ApprovalState
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.guard.server_access import ServerAccessCheck
from bastion.model import Decision, ToolCall, Verdict
from bastion.stores import open_admin_token_store
from tests.e2e.conftest import BASTION, VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.webhooks import webhook_receiver

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

HELD_ZONE = "Asia/Tokyo"


class HoldTokyo:
    """Asks for approval of any call about Tokyo; denies Antarctica. A stand-in for policy rules."""

    name = "policy"

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        zone = call.arguments.get("timezone")
        if zone == HELD_ZONE:
            return Verdict(Decision.ASK, "Tokyo needs a second pair of eyes", check="policy:tokyo")
        if zone == "Antarctica/Troll":
            return Verdict(Decision.DENY, "no Antarctica", check="policy:antarctica")
        return None


class WaitableSink(ListEventSink):
    """Records events; a test can wait for one without polling."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = anyio.Event()

    def record(self, event: object) -> None:
        super().record(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, kind: type, where: Callable[[Any], bool] = lambda e: True, after: int = 0) -> Any:
        while True:
            for event in self.events[after:]:
                if isinstance(event, kind) and where(event):
                    return event
            await self._changed.wait()


@asynccontextmanager
async def held_gateway(
    tmp_path: Path, alerts: dict[str, Any] | None = None, **approvals: Any
) -> AsyncIterator[tuple[Gateway, WaitableSink, str, Path]]:
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    config_path = write_config(tmp_path, servers, approvals=approvals, alerts=alerts or {})
    sink = WaitableSink()
    gateway = Gateway(load_config(config_path), checks=[ServerAccessCheck(), HoldTokyo()], events=sink)
    async with serving(gateway):
        assert gateway.tokens is not None
        _, token = gateway.tokens.create("tokyo-bot")
        yield gateway, sink, token, config_path


async def cli(config_path: Path, *args: str) -> str:
    done = await anyio.run_process([BASTION, "approvals", *args, "--config", str(config_path)], check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def text_of(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def approval_id_in(result: Any) -> str:
    match = re.search(r"queued for human review as approval ([0-9a-f]{8})", text_of(result))
    assert match, text_of(result)
    return match[1]


async def test_a_held_call_proceeds_when_a_second_process_approves_it_through_the_cli(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with held_gateway(tmp_path) as (gateway, sink, token, config_path):
            async with http_client(gateway, "time", token) as client, anyio.create_task_group() as tg:
                results: list[Any] = []

                async def agent() -> None:
                    results.append(await client.call_tool("get_current_time", {"timezone": HELD_ZONE}))

                tg.start_soon(agent)
                requested = await sink.wait_for(ApprovalRequested)
                listed = await cli(config_path, "list", "--state", "pending")
                assert requested.approval.id in listed
                await cli(config_path, "approve", requested.approval.id, "--reason", "looked fine")
            assert gateway.approvals is not None
            decided = gateway.approvals.get(requested.approval.id)
    [result] = results
    assert result.is_error is False, text_of(result)
    assert HELD_ZONE in text_of(result)
    assert decided is not None
    assert (decided.state, decided.decided_by, decided.decision_reason) == (
        ApprovalState.APPROVED,
        f"cli:{getpass.getuser()}",
        "looked fine",
    )
    assert decided.consumed_at is not None
    assert (decided.rule, decided.reason) == ("policy:tokyo", "Tokyo needs a second pair of eyes")
    assert decided.arguments == {"timezone": HELD_ZONE}


async def test_the_admin_api_approves_and_denies_with_a_reason_and_refuses_agents(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with held_gateway(tmp_path) as (gateway, sink, token, _):
            admin_store = open_admin_token_store(gateway.config)
            _, approver = admin_store.create("ops-alice", Role.APPROVER)
            admin_store.close()
            api = f"{gateway.base_url}/admin/api"
            results: dict[str, Any] = {}
            async with (
                http_client(gateway, "time", token) as client,
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {approver}"}) as admin,
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as as_agent,
                anyio.create_task_group() as tg,
            ):

                async def agent(name: str, arguments: dict[str, Any]) -> None:
                    results[name] = await client.call_tool("get_current_time", arguments)

                tg.start_soon(agent, "approved", {"timezone": HELD_ZONE})
                first = await sink.wait_for(ApprovalRequested)
                assert (await as_agent.get(f"{api}/approvals")).status_code == 403
                assert (await as_agent.post(f"{api}/approvals/{first.approval.id}/approve")).status_code == 403
                async with httpx2.AsyncClient() as anonymous:
                    assert (await anonymous.get(f"{api}/approvals")).status_code == 401
                pending = (await admin.get(f"{api}/approvals", params={"state": "pending"})).json()["approvals"]
                assert [a["id"] for a in pending] == [first.approval.id]
                answer = await admin.post(f"{api}/approvals/{first.approval.id}/approve", json={"reason": "ok"})
                assert answer.status_code == 200, answer.text

                tg.start_soon(agent, "denied", {"timezone": HELD_ZONE, "format": "x"})
                second = await sink.wait_for(ApprovalRequested, lambda e: e.approval.id != first.approval.id)
                answer = await admin.post(
                    f"{api}/approvals/{second.approval.id}/deny", json={"reason": "not on a Friday"}
                )
                assert answer.status_code == 200, answer.text
    assert results["approved"].is_error is False
    assert results["denied"].is_error is True
    message = text_of(results["denied"])
    assert "a person denied it" in message
    assert "not on a Friday" in message
    assert "api:ops-alice" in message


async def test_a_call_approved_after_its_wait_is_admitted_once_on_retry(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with (
            held_gateway(tmp_path, wait=0) as (gateway, _, token, config_path),
            http_client(gateway, "time", token) as client,
        ):
            queued = await client.call_tool("get_current_time", {"timezone": HELD_ZONE})
            assert queued.is_error is True
            approval_id = approval_id_in(queued)
            assert "retry the identical call" in text_of(queued)
            different = await client.call_tool("get_current_time", {"timezone": HELD_ZONE, "x": 1})
            await cli(config_path, "approve", approval_id)
            retried = await client.call_tool("get_current_time", {"timezone": HELD_ZONE})
            again = await client.call_tool("get_current_time", {"timezone": HELD_ZONE})
    assert approval_id_in(different) != approval_id
    assert retried.is_error is False, text_of(retried)
    assert HELD_ZONE in text_of(retried)
    assert again.is_error is True
    assert approval_id_in(again) != approval_id


async def test_always_allow_admits_identical_calls_only(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with (
            held_gateway(tmp_path, wait=0) as (gateway, _, token, config_path),
            http_client(gateway, "time", token) as client,
        ):
            approval_id = approval_id_in(await client.call_tool("get_current_time", {"timezone": HELD_ZONE}))
            await cli(config_path, "approve", approval_id, "--always", "--reason", "routine")
            rules = await cli(config_path, "rules")
            passed = [await client.call_tool("get_current_time", {"timezone": HELD_ZONE}) for _ in range(3)]
            other = await client.call_tool("get_current_time", {"timezone": HELD_ZONE, "y": 2})
    assert "tokyo-bot -> time/get_current_time" in rules
    assert [r.is_error for r in passed] == [False, False, False]
    assert other.is_error is True
    approval_id_in(other)


async def test_nothing_the_agent_sends_approves_its_own_call(tmp_path: Path) -> None:
    sneaky_arguments = {"timezone": HELD_ZONE, "approved": True, "approval": "granted", "_meta": {"approved": True}}
    with anyio.fail_after(60):
        async with held_gateway(tmp_path, wait=0) as (gateway, _, token, _config):
            async with http_client(gateway, "time", token) as client:
                first = await client.call_tool("get_current_time", sneaky_arguments)
                approval_id = approval_id_in(first)
                meta = {"approved": True, "bastion/approval": approval_id, "bastion.approved": "yes"}
                second = await client.call_tool("get_current_time", sneaky_arguments, meta=meta)  # type: ignore[arg-type]
                plain_meta = await client.call_tool("get_current_time", {"timezone": HELD_ZONE}, meta=meta)  # type: ignore[arg-type]
            assert gateway.approvals is not None
            states = [a.state for a in gateway.approvals.list()]
    assert first.is_error is True
    assert second.is_error is True
    assert approval_id_in(second) == approval_id  # the same pending approval, still pending
    assert plain_meta.is_error is True
    approval_id_in(plain_meta)
    assert states == [ApprovalState.PENDING, ApprovalState.PENDING]


async def test_undecided_approvals_expire_deny_the_call_and_alert(tmp_path: Path) -> None:
    async with webhook_receiver() as receiver:
        alerts = {"webhooks": [{"url": receiver.url}], "coalesce_window": 0}
        with anyio.fail_after(60):
            async with held_gateway(tmp_path, alerts, expire_after=0.5) as (gateway, sink, token, config_path):
                async with http_client(gateway, "time", token) as client:
                    held = await client.call_tool("get_current_time", {"timezone": HELD_ZONE})
                    denied = await client.call_tool("get_current_time", {"timezone": "Antarctica/Troll"})
                    expired = await sink.wait_for(ApprovalExpired)
                    requested_alert = await receiver.wait_for_kind("approval_requested")
                    expired_alert = await receiver.wait_for_kind("approval_expired")
                    denied_alert = await receiver.wait_for_kind("call_denied")
                late = await anyio.run_process(
                    [BASTION, "approvals", "approve", expired.approval.id, "--config", str(config_path)],
                    check=False,
                )
    assert held.is_error is True
    assert f"approval {expired.approval.id} expired before anyone decided it" in text_of(held)
    assert denied.is_error is True
    assert requested_alert["details"]["approval_id"] == expired.approval.id
    assert expired_alert["details"]["approval_id"] == expired.approval.id
    assert denied_alert["details"]["check"] == "policy:antarctica"
    assert not any(a["kind"] == "call_denied" and a["details"]["check"] == "approval" for a in receiver.alerts)
    assert late.returncode != 0
    assert b"already expired" in late.stderr


async def test_admin_tokens_from_the_cli_carry_their_role(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with held_gateway(tmp_path, wait=0) as (gateway, _, token, config_path):
            made = await anyio.run_process(
                [
                    BASTION,
                    "admin",
                    "token",
                    "create",
                    "--name",
                    "auditor",
                    "--role",
                    "viewer",
                    "--config",
                    str(config_path),
                ]
            )
            viewer = made.stdout.decode().strip().splitlines()[-1]
            async with http_client(gateway, "time", token) as client:
                approval_id = approval_id_in(await client.call_tool("get_current_time", {"timezone": HELD_ZONE}))
            api = f"{gateway.base_url}/admin/api"
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {viewer}"}) as http:
                whoami = (await http.get(f"{api}/whoami")).json()
                shown = await http.get(f"{api}/approvals/{approval_id}")
                refused = await http.post(f"{api}/approvals/{approval_id}/approve")
            listed = await anyio.run_process([BASTION, "admin", "token", "list", "--config", str(config_path)])
            shown_cli = await cli(config_path, "show", approval_id)
    assert viewer.startswith("bsa_")
    assert viewer not in listed.stdout.decode()
    assert "auditor" in listed.stdout.decode()
    assert whoami == {"id": viewer.split("_")[1], "name": "auditor", "role": "viewer"}
    assert shown.json()["state"] == "pending"
    assert refused.status_code == 403
    assert '"state": "pending"' in shown_cli
