"""CPU per request of `bastion wrap`'s stdio front door alone, against a bare line echo or another commit.

Run: .venv/bin/python benchmarks/bench_stdio_front.py [--requests 2000] [--runs 6] [--against main]

The front door (`relay/stdio_front.py` reading and writing through `stdio_pipes.py`) serves
sequential `tools/call` lines over real pipes on uvloop; the relay behind it is a stub that
answers at once, so what is measured is the front door's own work per request: the line
read, parse, request task, flow, answer written. The baseline is the same loop around a bare
echo (read a line, parse it, write an answer), or, with `--against REF`, the same two files
as they are at git commit REF (alternating runs, same process). The figures are CPU time of
this process (`time.process_time`) per request, medians over the runs; printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import orjson

from bastion.model import Principal

ROOT = Path(__file__).resolve().parent.parent
FILES = {"front": "src/bastion/relay/stdio_front.py", "pipes": "src/bastion/stdio_pipes.py"}
EARLIER = {"src/bastion/stdio_pipes.py": "src/bastion/gateway/stdio_pipes.py"}
"""Where a file was before the rooms were regrouped (for `--against` an older commit)."""


def answer(request_id: Any) -> bytes:
    result = {"content": [{"type": "text", "text": "hi"}]}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


class StubRelay:
    name = "echo"

    async def answer(self, flow: Any) -> tuple[bytes, int | None]:
        return answer(flow.request_id), None

    async def notified(self, session: Any, notification: Any) -> None:
        return None


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def bare_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        request = orjson.loads(line)
        writer.write(answer(request["id"]) + b"\n")
        await writer.drain()


async def measure(front: tuple[ModuleType, ModuleType] | None, requests: int) -> float:
    """CPU µs per request, one request at a time (written, then its answer awaited)."""
    loop = asyncio.get_running_loop()
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    os.set_blocking(r_out, False)
    reader = asyncio.StreamReader(limit=1 << 20)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r_in, "rb", buffering=0)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(w_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    params = {"name": "echo", "arguments": {"text": "hi"}}
    lines = [
        orjson.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}) for i in range(requests)
    ]
    async with anyio.create_task_group() as tg:
        if front is None:
            tg.start_soon(bare_echo, reader, writer)
        else:
            front_module, pipes = front
            served = front_module.StdioFront(StubRelay(), Principal(agent="local:bench", via="local"))
            tg.start_soon(served.serve, pipes.PipeLineReader(reader), pipes.PipeTextWriter(writer))
        began = time.process_time()
        got = b""
        for line in lines:
            os.write(w_in, line + b"\n")
            while b"\n" not in got:
                await anyio.wait_readable(r_out)
                got += os.read(r_out, 65536)
            got = got[got.index(b"\n") + 1 :]
        spent = time.process_time() - began
        os.close(w_in)
    read_transport.close()
    write_transport.close()
    os.close(r_out)
    return spent / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per run (default 2000)")
    parser.add_argument("--runs", type=int, default=6, help="runs of each, alternating (default 6)")
    parser.add_argument("--against", metavar="REF", help="compare with the front door at this git commit")
    args = parser.parse_args()
    ours = (load("front_here", ROOT / FILES["front"]), load("pipes_here", ROOT / FILES["pipes"]))
    baseline: tuple[ModuleType, ModuleType] | None = None
    with tempfile.TemporaryDirectory() as folder:
        if args.against:
            loaded = []
            for key, path in FILES.items():
                shown = subprocess.run(
                    ["git", "-C", str(ROOT), "show", f"{args.against}:{path}"], capture_output=True, check=False
                )
                if shown.returncode != 0 and path in EARLIER:
                    shown = subprocess.run(
                        ["git", "-C", str(ROOT), "show", f"{args.against}:{EARLIER[path]}"],
                        capture_output=True,
                        check=True,
                    )
                shown.check_returncode()
                text = shown.stdout
                (Path(folder) / f"{key}.py").write_bytes(text)
                loaded.append(load(f"{key}_{args.against}", Path(folder) / f"{key}.py"))
            baseline = (loaded[0], loaded[1])
        base_name = f"front door at {args.against}" if args.against else "bare line echo"

        async def run() -> dict[str, list[float]]:
            figures: dict[str, list[float]] = {base_name: [], "front door here": []}
            for turn in range(args.runs):
                pair = [(base_name, baseline), ("front door here", ours)]
                for name, front in pair if turn % 2 else pair[::-1]:
                    figures[name].append(await measure(front, args.requests))
            return figures

        figures = anyio.run(run, backend_options={"use_uvloop": True})
    base = statistics.median(figures[base_name])
    for name, values in figures.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name:28s} {median:7.1f} µs CPU per request  ({median / base:.2f}x)  runs: {runs}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
