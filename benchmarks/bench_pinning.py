"""Cost of the `pinning` check per tool call, and per tool of a `tools/list` result.

Run: .venv/bin/python benchmarks/bench_pinning.py [N]
Prints median and p99 in microseconds, next to a baseline check that does nothing, measured
in the same run. Printed, not asserted.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bastion.guard.pinning import PinningCheck, SqlitePinStore, fingerprint, scan_definition
from bastion.model import Principal, ToolCall, Verdict

AGENT = Principal(agent="bench")
DEFINITION: dict[str, Any] = {
    "name": "git_log",
    "description": "Shows the commit logs of the repository, newest first. " * 4,
    "inputSchema": {
        "type": "object",
        "properties": {
            f"p{i}": {"type": "string", "description": "A parameter of the tool, with a description."} for i in range(8)
        },
        "required": ["p1"],
    },
    "annotations": {"readOnlyHint": True},
}


class NoOpCheck:
    name = "noop"

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        return None


def figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"median {statistics.median(ordered) * 1e6:8.1f} us   p99 {p99 * 1e6:8.1f} us"


async def per_call(check: Any, n: int) -> list[float]:
    call = ToolCall("c", AGENT, "srv", "git_log", {"p1": "x"}, definition=DEFINITION)
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        await check.check_tool_call(call)
        samples.append(time.perf_counter() - began)
    return samples


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SqlitePinStore(Path(folder) / "pins.db")
        check = PinningCheck(store)
        await check.check_tool_call(ToolCall("c", AGENT, "srv", "git_log", {}, definition=DEFINITION))  # pin it
        baseline = await per_call(NoOpCheck(), n)
        pinned = await per_call(check, n)
        tools = [DEFINITION, *({**DEFINITION, "name": f"tool{i}"} for i in range(49))]
        await check.filter_tool_list(AGENT, "srv", tools)
        listing = []
        for _ in range(max(n // 100, 20)):
            fresh = [dict(tool) for tool in tools]  # a new tools/list result: new objects, hashed again
            began = time.perf_counter()
            await check.filter_tool_list(AGENT, "srv", fresh)
            listing.append((time.perf_counter() - began) / len(fresh))
        store.close()
    hashing = []
    for _ in range(n):
        began = time.perf_counter()
        fingerprint(DEFINITION)
        hashing.append(time.perf_counter() - began)
    scanning = []
    for _ in range(max(n // 100, 20)):
        began = time.perf_counter()
        scan_definition(DEFINITION)
        scanning.append(time.perf_counter() - began)
    print(f"baseline (no-op check) per call      {figures(baseline)}")
    print(f"pinning check per call (known tool)  {figures(pinned)}")
    print(f"tools/list, per tool (50 tools)      {figures(listing)}")
    print(f"fingerprint of one definition        {figures(hashing)}")
    print(f"scan of one definition (first sight) {figures(scanning)}")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
