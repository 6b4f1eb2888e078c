"""Server notifications reach the agents they concern, through the shared upstream session."""

from __future__ import annotations

import anyio
import mcp_types as types
import pytest

from tests.e2e.clients import connect

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    # resources/subscribe is the handshake-era API this test exercises on purpose.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

URI = "demo://resource/dynamic/text/1"


@pytest.mark.parametrize("front", ["http", "sse", "wrap"])
async def test_resource_updates_reach_the_subscriber_only(gateway, front):
    if "everything" not in gateway.config_path.read_text():
        pytest.fail("npx is required for the server-everything tests (install Node.js)")
    updated = anyio.Event()
    bystander_updates: list[str] = []

    async def subscriber(message) -> None:
        if isinstance(message, types.ResourceUpdatedNotification) and str(message.params.uri) == URI:
            updated.set()

    async def bystander(message) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            bystander_updates.append(str(message.params.uri))

    with anyio.fail_after(90):
        async with (
            connect(gateway, "everything", front=front, message_handler=subscriber) as client,
            connect(gateway, "everything", front="http", message_handler=bystander) as other,
        ):
            await other.list_tools()
            await client.subscribe_resource(URI)
            await client.call_tool("toggle-subscriber-updates", {})
            try:
                await updated.wait()
            finally:
                await client.call_tool("toggle-subscriber-updates", {})
                await client.unsubscribe_resource(URI)
    assert bystander_updates == [], "an agent that did not subscribe received another agent's updates"
