"""Server-initiated requests reach exactly the agent they belong to, or nobody."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server.connection import Connection
from mcp.server.session import ServerSession

from bastion.model import Principal
from bastion.proxy.downstream import DownstreamHub
from bastion.rpc_error import RpcError

ROOTS = {"roots": [{"uri": "file:///srv", "name": "srv"}]}


class Channel:
    """An in-memory outbound channel that answers roots/list with a per-agent root."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.sent: list[str] = []
        self.can_send_request = True

    async def send_raw_request(self, method: str, params: Any, opts: Any = None) -> dict[str, Any]:
        self.sent.append(method)
        return {"roots": [{"uri": f"file:///{self.label}"}]}

    async def notify(self, method: str, params: Any, opts: Any = None) -> None:
        self.sent.append(method)


def agent_session(hub: DownstreamHub, label: str):
    channel = Channel(label)
    connection = Connection(channel, protocol_version="2025-11-25")
    session = ServerSession(channel, connection)  # type: ignore[arg-type]
    agent = hub.join(connection, Principal(label), session)
    return agent, session, channel


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_only_call_in_flight_gets_the_request():
    hub = DownstreamHub("files")
    a, sa, ca = agent_session(hub, "a")
    _, _, cb = agent_session(hub, "b")
    hub.begin(a, sa, request_id=4)
    result = await hub.relay_request("roots/list", {})
    assert result["roots"][0]["uri"] == "file:///a"
    assert ca.sent == ["roots/list"]
    assert cb.sent == []


@pytest.mark.anyio
async def test_calls_from_two_agents_in_flight_refuse_the_request():
    hub = DownstreamHub("files")
    a, sa, ca = agent_session(hub, "a")
    b, sb, cb = agent_session(hub, "b")
    hub.begin(a, sa, request_id=1)
    hub.begin(b, sb, request_id=2)
    with pytest.raises(RpcError, match="requests from several agents are in flight"):
        await hub.relay_request("sampling/createMessage", {"messages": [], "maxTokens": 5})
    assert ca.sent == cb.sent == []


@pytest.mark.anyio
async def test_several_calls_of_one_agent_go_to_that_agent():
    hub = DownstreamHub("files")
    a, sa, _ = agent_session(hub, "a")
    agent_session(hub, "b")
    hub.begin(a, sa, request_id=1)
    hub.begin(a, sa, request_id=2)
    result = await hub.relay_request("roots/list", {})
    assert result["roots"][0]["uri"] == "file:///a"


@pytest.mark.anyio
async def test_idle_single_agent_gets_it_and_no_agent_is_refused():
    hub = DownstreamHub("files")
    with pytest.raises(RpcError, match="no agent is connected"):
        await hub.relay_request("roots/list", {})
    agent_session(hub, "only")
    assert (await hub.relay_request("roots/list", {}))["roots"][0]["uri"] == "file:///only"


@pytest.mark.anyio
async def test_unknown_server_requests_are_refused():
    hub = DownstreamHub("files")
    with pytest.raises(RpcError, match="does not relay"):
        await hub.relay_request("tasks/get", {})


@pytest.mark.anyio
async def test_resource_updates_go_only_to_subscribers_and_list_changes_to_all():
    hub = DownstreamHub("files")
    a, _, ca = agent_session(hub, "a")
    _, _, cb = agent_session(hub, "b")
    assert a is not None
    a.subscriptions.add("file:///x")
    await hub.broadcast("notifications/resources/updated", {"uri": "file:///x"})
    await hub.broadcast("notifications/tools/list_changed", {})
    assert ca.sent == ["notifications/resources/updated", "notifications/tools/list_changed"]
    assert cb.sent == ["notifications/tools/list_changed"]
