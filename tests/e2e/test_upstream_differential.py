"""Differential: Bastion's own upstream session and the SDK's client stack give the same results.

The same scripted session (handshake, lists, tool calls, errors, progress, logging, resources,
prompts, completion, server-to-client sampling / elicitation / roots, concurrent calls, a
cancellation mid-call, the server dying mid-call and the restart after it) runs against real
servers through `Upstream(client="raw")` and `Upstream(client="sdk")`; the transcripts must be
equal. Servers: `servers/scripted_server.py` over stdio and Streamable HTTP in both eras, and
`mcp-server-time` (PyPI).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from bastion.config import HttpServerConfig, StdioServerConfig
from bastion.rpc_error import RpcError
from bastion.upstream.upstream import ClientKind, Upstream
from tests.e2e.conftest import SERVERS_DIR, VENV_BIN, LineReader

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPTED = str(SERVERS_DIR / "scripted_server.py")
CLIENTS: tuple[ClientKind, ClientKind] = ("raw", "sdk")


class Recorder:
    """What the upstream handed the gateway: server requests (answered from a table) and notifications."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self.notified = anyio.Event()

    async def on_request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((method, params))
        if method == "sampling/createMessage":
            return {"role": "assistant", "content": {"type": "text", "text": "sampled!"}, "model": "m"}
        if method == "elicitation/create":
            return {"action": "accept", "content": {"answer": "yes"}}
        if method == "roots/list":
            return {"roots": [{"uri": "file:///work/a", "name": "a"}]}
        raise MCPError(code=-32601, message=f"unexpected {method}")

    async def on_notification(self, method: str, params: dict[str, Any]) -> None:
        self.notifications.append((method, params))
        self.notified.set()

    async def wait_for(self, method: str) -> None:
        while not any(m == method for m, _ in self.notifications):
            await self.notified.wait()
            self.notified = anyio.Event()


async def outcome(upstream: Upstream, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
    """The result, or the error as (code, message, data)."""
    try:
        return await upstream.request(method, params, **kw)
    except RpcError as exc:  # both clients' error replies (the SDK's converted at its session)
        return ("error", exc.code, exc.message, exc.data)


async def script(upstream: Upstream, recorder: Recorder, marker: Path, *, can_restart: bool) -> list[Any]:
    """The scripted session; every step's outcome, in order."""
    info = await upstream.ensure_started()
    out: list[Any] = [
        ("info", info.protocol_version, info.server_info, info.instructions),
        ("capabilities", info.capabilities),
    ]
    handshake = info.protocol_version != "2026-07-28"
    out.append(await outcome(upstream, "tools/list"))
    out.append(await outcome(upstream, "tools/call", {"name": "echo", "arguments": {"text": "héllo ✓"}}))
    out.append(await outcome(upstream, "tools/call", {"name": "number", "arguments": {"value": 2**70 + 1}}))
    out.append(await outcome(upstream, "tools/call", {"name": "fails", "arguments": {"reason": "broken"}}))
    out.append(await outcome(upstream, "tools/call", {"name": "refuses", "arguments": {}}))
    out.append(await outcome(upstream, "tools/call", {"name": "no-such-tool", "arguments": {}}))
    out.append(await outcome(upstream, "nope/nothing", {}))

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    out.append(
        await outcome(upstream, "tools/call", {"name": "steps", "arguments": {"count": 3}}, on_progress=on_progress)
    )
    await anyio.wait_all_tasks_blocked()
    out.append(("progress", sorted(progress)))

    if handshake:
        out.append(await outcome(upstream, "logging/setLevel", {"level": "info"}))
    out.append(await outcome(upstream, "tools/call", {"name": "logs", "arguments": {}}))
    await outcome(upstream, "ping")
    await anyio.wait_all_tasks_blocked()
    out.append(("notifications", list(recorder.notifications)))

    out.append(await outcome(upstream, "resources/list"))
    out.append(await outcome(upstream, "resources/templates/list"))
    out.append(await outcome(upstream, "resources/read", {"uri": "scripted://readme"}))
    out.append(await outcome(upstream, "resources/read", {"uri": "scripted://notes/x"}))
    out.append(await outcome(upstream, "resources/read", {"uri": "scripted://nothing"}))
    out.append(await outcome(upstream, "prompts/list"))
    out.append(await outcome(upstream, "prompts/get", {"name": "greet", "arguments": {"name": "Ann"}}))
    out.append(
        await outcome(
            upstream,
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "al"}},
        )
    )

    if handshake:
        for tool, arguments in (("sample", {"prompt": "hi"}), ("ask", {"question": "ok?"}), ("roots", {})):
            out.append(await outcome(upstream, "tools/call", {"name": tool, "arguments": arguments}))
        out.append(("server requests", list(recorder.requests)))
        out.append(await outcome(upstream, "tools/call", {"name": "changed", "arguments": {}}))
        await recorder.wait_for("notifications/tools/list_changed")
        out.append(("list changed", recorder.notifications[-1]))

    texts = [f"call {i}" for i in range(12)]
    async with anyio.create_task_group() as tg:
        answers: dict[str, Any] = {}

        async def call(text: str) -> None:
            answers[text] = await outcome(upstream, "tools/call", {"name": "echo", "arguments": {"text": text}})

        for text in texts:
            tg.start_soon(call, text)
    assert all(answers[t]["content"][0]["text"] == t for t in texts), "a reply reached another request"
    out.append(("concurrent", [answers[t] for t in texts]))

    started = anyio.Event()

    async def on_wait_progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    async with anyio.create_task_group() as tg:
        params = {"name": "wait_forever", "arguments": {"marker": str(marker)}}
        tg.start_soon(partial(outcome, upstream, "tools/call", params, on_progress=on_wait_progress))
        await started.wait()
        tg.cancel_scope.cancel()
    await wait_for_file(marker, within=20)
    out.append(("cancelled", await anyio.Path(marker).read_text()))
    out.append(await outcome(upstream, "tools/call", {"name": "echo", "arguments": {"text": "after cancel"}}))

    died = await outcome(upstream, "tools/call", {"name": "die", "arguments": {}})
    out.append(("died", died[:2] if isinstance(died, tuple) else died))
    if can_restart:
        await upstream.session_ended.wait()
        out.append(await outcome(upstream, "tools/call", {"name": "echo", "arguments": {"text": "restarted"}}))
        out.append(("starts", upstream.starts))
    return out


async def wait_for_file(path: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while not await anyio.Path(path).exists():
        assert time.monotonic() < deadline, f"the upstream never saw the cancellation ({path} not written)"
        await anyio.sleep(0.05)


@asynccontextmanager
async def running(
    config: StdioServerConfig | HttpServerConfig, client: ClientKind
) -> AsyncIterator[tuple[Upstream, Recorder]]:
    recorder = Recorder()
    upstream = Upstream(
        "scripted",
        config,
        on_server_request=recorder.on_request,
        on_notification=recorder.on_notification,
        client=client,
    )
    async with upstream.running():
        yield upstream, recorder


@contextmanager
def http_server(era: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, SCRIPTED, "http", era], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        listening = LineReader(process.stderr).wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", 30)
        yield f"http://127.0.0.1:{listening[1]}/mcp"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize("era", ["modern", "handshake"])
async def test_stdio_sessions_match(era: str, tmp_path: Path) -> None:
    config = StdioServerConfig.model_validate({"command": sys.executable, "args": [SCRIPTED, "stdio", era]})
    transcripts = {}
    for client in CLIENTS:
        with anyio.fail_after(90):
            async with running(config, client) as (upstream, recorder):
                transcripts[client] = await script(upstream, recorder, tmp_path / f"{client}.marker", can_restart=True)
    assert transcripts["raw"] == transcripts["sdk"]
    assert transcripts["raw"][0][1] == ("2026-07-28" if era == "modern" else "2025-11-25")
    assert ("starts", 2) in transcripts["raw"]
    check_meaningful(transcripts["raw"], handshake=era == "handshake")


@pytest.mark.parametrize("era", ["modern", "handshake"])
async def test_http_sessions_match(era: str, tmp_path: Path) -> None:
    transcripts = {}
    for client in CLIENTS:
        with http_server(era) as url, anyio.fail_after(90):
            config = HttpServerConfig.model_validate({"url": url})
            async with running(config, client) as (upstream, recorder):
                transcripts[client] = await script(upstream, recorder, tmp_path / f"{client}.marker", can_restart=False)
    assert transcripts["raw"] == transcripts["sdk"]
    assert transcripts["raw"][0][1] == ("2026-07-28" if era == "modern" else "2025-11-25")
    check_meaningful(transcripts["raw"], handshake=era == "handshake")


def check_meaningful(transcript: list[Any], *, handshake: bool) -> None:
    """Equal transcripts prove little if both sides failed alike: the script did reach the server."""
    steps = {step[0]: step[1:] for step in transcript if isinstance(step, tuple) and isinstance(step[0], str)}
    assert len(steps["progress"][0]) == 3
    assert steps["cancelled"] == ("cancelled",)
    assert "héllo ✓" in str(transcript)
    assert "refused on purpose" in str(transcript)
    assert str(2**70 + 1) in str(transcript)
    if handshake:
        assert "sampled!" in str(transcript)
        assert "file:///work/a" in str(transcript)
        assert any(method == "notifications/message" for method, _ in steps["notifications"][0])


async def test_a_pypi_server_matches() -> None:
    config = StdioServerConfig.model_validate({"command": str(VENV_BIN / "mcp-server-time")})
    transcripts = {}
    for client in CLIENTS:
        with anyio.fail_after(60):
            async with running(config, client) as (upstream, _):
                info = await upstream.ensure_started()
                transcripts[client] = [
                    info.protocol_version,
                    info.capabilities,
                    await outcome(upstream, "tools/list"),
                    await outcome(
                        upstream,
                        "tools/call",
                        {
                            "name": "convert_time",
                            "arguments": {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
                        },
                    ),
                    await outcome(
                        upstream, "tools/call", {"name": "get_current_time", "arguments": {"timezone": "Nowhere/Else"}}
                    ),
                    await outcome(upstream, "prompts/list"),
                    info.server_info,
                ]
    assert transcripts["raw"] == transcripts["sdk"]
    assert "21:00" in str(transcripts["raw"][3])
