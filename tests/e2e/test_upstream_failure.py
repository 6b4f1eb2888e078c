"""An HTTP upstream that dies under a running gateway costs its own calls, never the front door.

A real `bastion up` in front of a real Streamable HTTP upstream (tests/e2e/servers/http_upstream.py),
a real SDK client. The upstream is killed with a call in flight; the calls that meet it dead fail
with a JSON-RPC error naming the server, `/readyz` says it is down, a new agent is refused with a
JSON-RPC error (not an HTTP 500), and once the upstream is back on its port the same agent session
works again, all from the one gateway process.

Before the fix, the first request after the kill that found the upstream unreachable raised the
SDK client transport's `ConnectError` out of the upstream's task group, which cancelled the
gateway's serving task: every session manager's `run()` ended and each request after that got
HTTP 500 (`Task group is not initialized`) until the process went away.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.clients import connect
from tests.e2e.conftest import RunningGateway, start_gateway, write_config
from tests.e2e.http_upstreams import http_upstream

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def mcp_error_in(exc: BaseException) -> MCPError:
    """The `MCPError` an exception is, or (the client's task group wraps it) holds."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    assert isinstance(exc, MCPError), repr(exc)
    return exc


async def readyz(gateway: RunningGateway) -> tuple[int, dict[str, Any]]:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.get(f"{gateway.base_url}/readyz", headers=gateway.status_headers())
    return response.status_code, response.json()


async def test_gateway_keeps_serving_when_its_http_upstream_dies(tmp_path: Path) -> None:
    with http_upstream() as first:
        port = first.port
        gateway = start_gateway(write_config(tmp_path, {"flaky": {"url": first.url}}))
        try:
            with anyio.fail_after(120):
                async with connect(gateway, "flaky") as client:
                    assert (await client.call_tool("echo", {"text": "before"})).content[0].text == "before"

                    # A call in flight when the upstream dies fails promptly.
                    holding = anyio.Event()
                    outcome: list[BaseException | object] = []

                    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                        holding.set()

                    async def call_hold() -> None:
                        try:
                            outcome.append(await client.call_tool("hold", {}, progress_callback=on_progress))
                        except MCPError as exc:
                            outcome.append(exc)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(call_hold)
                        await holding.wait()
                        first.kill()
                    assert "stopped while handling this request; it is reopened on the next request" in str(
                        outcome[0]
                    ), outcome

                    # Calls that meet the dead upstream fail with a JSON-RPC error naming it.
                    for _ in range(3):
                        with pytest.raises(MCPError) as failed:
                            await client.call_tool("echo", {"text": "down"})
                        assert "'flaky'" in failed.value.error.message, failed.value.error

                    # The front door still answers: /readyz says the server is down ...
                    status, report = await readyz(gateway)
                    assert status == 503, report
                    assert report["servers"]["flaky"] in ("down", "failed"), report
                    # ... and a new agent is refused with a JSON-RPC error, not an HTTP 500.
                    with pytest.raises((MCPError, BaseExceptionGroup)) as refused:
                        async with connect(gateway, "flaky"):
                            pass
                    refusal = mcp_error_in(refused.value)
                    assert "could not be started" in refusal.error.message, refusal.error

                    # The upstream is back on its port: the same agent session works again.
                    with http_upstream(port):
                        again = await client.call_tool("echo", {"text": "after"})
                        assert again.content[0].text == "after"
                        status, report = await readyz(gateway)
                        assert status == 200, report
                        async with connect(gateway, "flaky") as newcomer:
                            fresh = await newcomer.call_tool("echo", {"text": "new agent"})
                            assert fresh.content[0].text == "new agent"
            assert gateway.process.poll() is None, "the gateway process exited"
            assert "Task group is not initialized" not in "\n".join(gateway.stdout.lines)
        finally:
            gateway.stop()


async def test_a_gateway_going_down_stops_answering_even_on_kept_alive_connections(tmp_path: Path) -> None:
    """When the serving task is cancelled (a failure elsewhere takes the gateway down), nothing
    answers any more: before, uvicorn skipped its shutdown and kept serving open connections
    with every session manager stopped (HTTP 500 to each request)."""
    with http_upstream() as upstream:
        gateway = Gateway(load_config(write_config(tmp_path, {"flaky": {"url": upstream.url}})))
        with anyio.fail_after(60):
            async with gateway.running(), anyio.create_task_group() as tg:
                ready, stopped = anyio.Event(), anyio.Event()
                serving = anyio.CancelScope()

                async def serve() -> None:
                    with serving:
                        await gateway.serve_http(ready=ready, handle_signals=False)
                    stopped.set()

                tg.start_soon(serve)
                await ready.wait()
                async with httpx2.AsyncClient(timeout=10) as http:
                    assert (await http.get(f"{gateway.base_url}/healthz")).status_code == 200
                    serving.cancel()
                    await stopped.wait()
                    with pytest.raises(httpx2.TransportError):
                        await http.get(f"{gateway.base_url}/healthz")
