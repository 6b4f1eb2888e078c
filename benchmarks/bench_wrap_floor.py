"""`bastion wrap` beside the server run directly and a bare line relay: what one more process costs, what Bastion adds.

Run: .venv/bin/python benchmarks/bench_wrap_floor.py [--calls 800] [--server CMD] [--read-only PATH ...] [--gap MS]
                                                    [--durability power,process] [--compare PROGRAM]

Three stdio targets, called one `tools/call echo` at a time with raw JSON-RPC lines (no SDK
client: its own time would be in every figure), interleaved call by call in rotating order
so that drift and cache effects hit all three alike:

- `direct`: the server itself (default: the SDK echo server in benchmarks/servers);
- `bare relay`: this script as a relay (`--relay -- CMD`): a uvloop process that copies lines
  between its stdio and the server's, and does nothing else: the floor of any stdio gateway
  written in Python (one more process, two more pipe hops);
- `bastion wrap`: on its defaults (audit `power`, the recommended policy, pinning, the sandbox),
  with its own data folder; with `--durability power,process` a second wrap whose write-ahead
  record is not fsynced (`audit.durability: process`, not the default), to show the fsync's share;
- `--compare PROGRAM` adds a `bastion wrap` run by another `bastion` program (another checkout's,
  e.g. a script running it with its `src` on `PYTHONPATH`), on the same defaults: a before and
  after of a change, interleaved call by call with everything else.

`--gap MS` idles that long before each call (a client's own work between calls; the disk's
fsync is slower after idle time: `bench_fsync_gap.py`). Printed: p50, p90 and p99 per target and
what each adds over `direct`. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import yaml

HERE = Path(__file__).resolve().parent
BASTION = os.environ.get("BASTION", str(Path(sys.executable).parent / "bastion"))
"""The `bastion` program of the `bastion wrap` rows (`BASTION=...` for another checkout's, as in `bench_peers.sh`)."""
ECHO = f"{sys.executable} {HERE / 'servers' / 'echo_server.py'} stdio"
WARMUP = 50


class Target:
    """One stdio process, handshake done, called with raw JSON-RPC lines."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout
        self.next_id = 0
        self.took: list[float] = []
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "floor", "version": "1"}}
        self.request("initialize", hello)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.request("tools/list", {})

    def send(self, message: dict[str, Any]) -> None:
        self.stdin.write(json.dumps(message).encode() + b"\n")

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.name} closed its stdout")
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == self.next_id:
                if "result" not in message:
                    raise RuntimeError(f"{self.name}: {method} failed: {message}")
                return message

    def call(self, measured: bool) -> None:
        text = f"{self.name} {self.next_id}"
        began = time.perf_counter()
        answer = self.request("tools/call", {"name": "echo", "arguments": {"text": text}})
        took = time.perf_counter() - began
        if answer["result"]["content"][0]["text"] != text:
            raise RuntimeError(f"{self.name}: sent {text!r}, got {answer['result']!r}")
        if measured:
            self.took.append(took)

    def close(self) -> None:
        self.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def spin(seconds: float) -> None:
    """The client busy for `seconds` (a sleep would let this process's core go idle too)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def wrap_config(folder: Path, server: list[str], read_only: list[str], durability: str) -> Path:
    """A config with the one server, run as `bastion wrap -- CMD` runs it, and `durability`."""
    sandbox = {"read_only": read_only} if read_only else {}
    config: dict[str, Any] = {
        "data_dir": str(folder / f"data-{durability}"),
        "servers": {"echo": {"command": server[0], "args": server[1:], "sandbox": sandbox}},
    }
    if durability != "power":  # the default
        config["audit"] = {"durability": durability}
    path = folder / f"wrap-{durability}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def measure(args: argparse.Namespace, folder: Path) -> list[Target]:
    server = shlex.split(args.server)
    env = dict(os.environ)
    targets = [
        Target("direct", server, env),
        Target("bare relay", [sys.executable, __file__, "--relay", "--", *server], env),
    ]
    for durability in args.durability.split(","):
        config = wrap_config(folder, server, args.read_only, durability)
        name = "bastion wrap" if durability == "power" else f"wrap {durability}"
        targets.append(Target(name, [BASTION, "wrap", "--config", str(config), "--server", "echo"], env))
    if args.compare:
        (folder / "compare").mkdir()
        config = wrap_config(folder / "compare", server, args.read_only, "power")
        targets.append(Target("wrap compare", [args.compare, "wrap", "--config", str(config), "--server", "echo"], env))
    try:
        for number in range(WARMUP + args.calls):
            turn = number % len(targets)
            for target in targets[turn:] + targets[:turn]:
                spin(args.gap / 1e3)
                target.call(measured=number >= WARMUP)
    finally:
        for target in targets:
            target.close()
    return targets


async def relay(argv: list[str]) -> None:
    """Copy lines from stdin to the server and from the server to stdout, nothing else."""
    loop = asyncio.get_running_loop()
    server = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=1 << 24)
    assert server.stdin is not None
    assert server.stdout is not None
    agent = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(agent), sys.stdin)
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)

    async def down() -> None:
        assert server.stdin is not None
        while line := await agent.readline():
            server.stdin.write(line)
        server.stdin.close()

    copying = asyncio.create_task(down())
    while line := await server.stdout.readline():
        out.write(line)
    await copying
    await server.wait()


def main() -> None:
    if sys.argv[1:2] == ["--relay"]:
        import uvloop

        uvloop.run(relay(sys.argv[sys.argv.index("--") + 1 :]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=800, help="measured calls per target (default 800)")
    parser.add_argument("--server", default=ECHO, help="the stdio server's command line (default: the SDK echo)")
    parser.add_argument("--read-only", action="append", default=[], help="a folder the sandboxed server may read")
    parser.add_argument("--gap", type=float, default=0.0, help="milliseconds the client is busy before each call")
    parser.add_argument("--durability", default="power", help="audit.durability of each wrap: power and/or process")
    parser.add_argument("--compare", metavar="PROGRAM", help="another `bastion` program's wrap, on the defaults")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-wrap-floor-") as folder:
        targets = measure(args, Path(folder))
    print(f"{args.calls} calls each, interleaved, client gap {args.gap} ms; load average {os.getloadavg()[0]:.2f}")
    base = statistics.median(targets[0].took)
    for target in targets:
        took = sorted(target.took)
        p50 = statistics.median(took)
        p90, p99 = (took[int(q * (len(took) - 1))] for q in (0.9, 0.99))
        added = "" if target is targets[0] else f"   +{(p50 - base) * 1e3:.3f} ms over direct"
        print(f"{target.name:<13} p50 {p50 * 1e3:6.3f} ms   p90 {p90 * 1e3:6.3f} ms   p99 {p99 * 1e3:6.3f} ms{added}")


if __name__ == "__main__":
    main()
