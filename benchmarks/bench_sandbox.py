"""What the sandbox costs: server start time and tools/call latency, sandboxed vs not.

Run: .venv/bin/python benchmarks/bench_sandbox.py [CALLS]
Printed, not asserted. Both configurations run `mcp-server-time` from Bastion's
virtualenv, talked to through Bastion's `Upstream` (no front door), in the same run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bastion.config import load_config
from bastion.runtime.server_runtime import RuntimeSettings, ServerRuntime
from bastion.upstream.upstream import Upstream

SERVER = str(Path(sys.executable).parent / "mcp-server-time")


async def _ignore_request(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {}


async def _ignore_notification(method: str, params: dict[str, Any]) -> None:
    return None


async def measure(sandbox: str, calls: int) -> tuple[float, list[float]]:
    """(start seconds, per-call milliseconds) for one configuration."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bastion.yaml"
        path.write_text(f"data_dir: {folder}/data\nservers:\n  time:\n    command: {SERVER}\n    sandbox: {sandbox}\n")
        config = load_config(path)
        server = config.servers["time"]
        settings = RuntimeSettings(config.data_dir)
        runtime = ServerRuntime("time", server, settings)  # type: ignore[arg-type]
        upstream = Upstream(
            "time", server, on_server_request=_ignore_request, on_notification=_ignore_notification, runtime=runtime
        )
        async with runtime.running(), upstream.running():
            began = time.perf_counter()
            await upstream.ensure_started()
            start = time.perf_counter() - began
            latencies = []
            params = {"name": "get_current_time", "arguments": {"timezone": "UTC"}}
            for _ in range(calls):
                t = time.perf_counter()
                await upstream.request("tools/call", params)
                latencies.append((time.perf_counter() - t) * 1000)
        return start, latencies


async def main(calls: int) -> None:
    results = {}
    for label, sandbox in (("no sandbox", "off"), ("sandbox", "{}"), ("sandbox+egress", "{network: allowlist}")):
        results[label] = await measure(sandbox, calls)
    base_start, base_calls = results["no sandbox"]
    print(f"{'configuration':16} {'start s':>8} {'x':>5} {'call p50 ms':>12} {'call p95 ms':>12}")
    for label, (start, latencies) in results.items():
        p50 = statistics.median(latencies)
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(f"{label:16} {start:8.3f} {start / base_start:5.2f} {p50:12.2f} {p95:12.2f}")
    ratio = statistics.median(results["sandbox"][1]) / statistics.median(base_calls)
    print(f"(call p50 ratio sandbox/no sandbox: {ratio:.2f})")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 200)
