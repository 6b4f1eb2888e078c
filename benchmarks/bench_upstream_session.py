"""The CPU Bastion spends on its side of an upstream session per call: its own JSON-RPC client or the SDK's.

Run: .venv/bin/python benchmarks/bench_upstream_session.py [--calls N] [--transport stdio,http]

One `Upstream` per client (`raw`: Bastion's own session, `sdk`: the SDK's `ClientSession`,
the reference) to the benchmark echo server (`servers/echo_server.py`, over stdio or
Streamable HTTP), called in alternating blocks of 50 `tools/call`s, one at a time. Printed
per client: the CPU of this process per call (the server's own CPU is a child's and not
counted) and the p50 round trip. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from bastion.config import HttpServerConfig, StdioServerConfig
from bastion.upstream.upstream import ClientKind, Upstream

ECHO_SERVER = str(Path(__file__).parent / "servers" / "echo_server.py")
BLOCK = 50
CLIENTS: tuple[ClientKind, ...] = ("raw", "sdk")
PARAMS = {"name": "echo", "arguments": {"text": "hello from the benchmark"}}


async def _ignore_request(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {}


async def _ignore_notification(method: str, params: dict[str, Any]) -> None:
    return None


async def _block(upstream: Upstream, calls: int, cpu: list[float], wall: list[float]) -> None:
    started_cpu = time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        await upstream.request("tools/call", PARAMS)
        wall.append(time.perf_counter() - started)
    cpu.append((time.process_time() - started_cpu) / calls)


async def measure(config: StdioServerConfig | HttpServerConfig, calls: int) -> dict[str, tuple[float, float]]:
    upstreams = {
        client: Upstream(
            f"echo-{client}",
            config,
            on_server_request=_ignore_request,
            on_notification=_ignore_notification,
            client=client,
        )
        for client in CLIENTS
    }
    cpu: dict[str, list[float]] = {client: [] for client in CLIENTS}
    wall: dict[str, list[float]] = {client: [] for client in CLIENTS}
    async with upstreams["raw"].running(), upstreams["sdk"].running():
        for upstream in upstreams.values():
            await _block(upstream, BLOCK * 2, [], [])  # warm up
        for _ in range(max(1, calls // BLOCK)):
            for client, upstream in upstreams.items():
                await _block(upstream, BLOCK, cpu[client], wall[client])
    return {c: (statistics.median(cpu[c]) * 1000, statistics.median(wall[c]) * 1000) for c in CLIENTS}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="measured calls per client (default 500)")
    parser.add_argument("--transport", default="stdio,http", help="stdio and/or http, comma-separated")
    args = parser.parse_args()
    for transport in args.transport.split(","):
        server: subprocess.Popen[bytes] | None = None
        if transport == "stdio":
            config: StdioServerConfig | HttpServerConfig = StdioServerConfig.model_validate(
                {"command": sys.executable, "args": [ECHO_SERVER, "stdio"]}
            )
        else:
            port = _free_port()
            server = subprocess.Popen([sys.executable, ECHO_SERVER, "http", str(port)])
            config = HttpServerConfig.model_validate({"url": f"http://127.0.0.1:{port}/mcp"})
            _wait_listening(port)
        try:
            results = anyio.run(measure, config, args.calls, backend_options={"use_uvloop": True})
        finally:
            if server is not None:
                server.kill()
                server.wait()
        for client, (cpu_ms, p50_ms) in results.items():
            print(f"{transport:5} {client:3}  CPU/call {cpu_ms:6.3f} ms   p50 {p50_ms:6.3f} ms")
        raw_cpu, sdk_cpu = results["raw"][0], results["sdk"][0]
        print(f"{transport:5} raw/sdk CPU ratio {raw_cpu / sdk_cpu:.2f}")


def _wait_listening(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"the echo server did not listen on port {port}")


if __name__ == "__main__":
    main()
