"""A `bastion wrap` call cut at its edges: the client's and the server's time beside Bastion's, with the loop's CPU.

Run: .venv/bin/python benchmarks/bench_wrap_edges.py [--calls 600] [--durability power|process]

`bench_stages.py` stamps the stages inside Bastion; what the wrap adds over the server run
directly is more than they add up to. This benchmark puts the client's own clock beside the
stamps (both `time.perf_counter_ns`, the same monotonic clock in every process): a raw
JSON-RPC client (`bench_wrap_floor.Target`, no SDK) calls `bastion wrap` (run by
`bench_stages.BOOT`, whose stamps here also carry the event loop thread's CPU time), with a
call to the echo server run directly between each two, and prints per call (medians):

- client write -> line read: the pipe, and Bastion's wake-up;
- line read -> server stdin written: Bastion's whole way in (front door, write-ahead record and
  its sync, guard, forward), and the loop's CPU in it;
- the server, from its stdin written to its reply line read, and the loop's CPU meanwhile (what
  was deferred off the call's way: the verdict event, notes);
- reply line -> answer being written, and the loop's CPU in it;
- answer being written -> client has it: the write, the pipe, and the client's wake-up.

Beside the direct call's p50, the server's part shows whether the server runs slower behind
Bastion than alone; the CPU columns whether a part waits (for the disk, for a processor) or
computes. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_gateway as bg  # the echo server and the config writer
import bench_stages as bs  # the boot script that stamps a Bastion
import bench_wrap_floor as wf  # the raw JSON-RPC client

WARMUP = 100
BOOT = bs.BOOT.replace(
    "EVENTS.append((label, time.perf_counter_ns()))",
    "EVENTS.append((label, time.perf_counter_ns(), time.thread_time_ns()))",
)
"""`bench_stages.BOOT` with each stamp's event-loop thread CPU time (the stamps run on the loop)."""
if BOOT == bs.BOOT:
    raise RuntimeError("bench_stages.BOOT no longer stamps as this benchmark expects")
NEEDED = ("stdin<", "wire>", "wire<", "reply line", "stdout>")
"""The stamps a call needs to be counted (its line read, its forward, the reply, the answer). The
answer's is taken as its write begins: stamped as it ends, it may fall after the client has the
answer and has sent the next call (or stopped the stamps)."""

Stamp = tuple[int, int]
"""(wall clock, loop CPU), nanoseconds."""


def measure(calls: int, durability: str, folder: Path) -> tuple[list[tuple[int, int, dict[str, Stamp]]], list[float]]:
    """Per measured call: the client's send and receive times and Bastion's first stamps of each
    label between that send and the next; and the direct calls' times."""
    out = folder / "stamps.json"
    echo = [sys.executable, bg.ECHO_SERVER, "stdio"]
    config = bg.write_config(folder / "wrap", {"echo": {"command": echo[0], "args": echo[1:]}}, durability)
    program = [sys.executable, "-c", BOOT, str(out), "plain", "wrap", "--config", str(config), "--server", "echo"]
    wrap = wf.Target("wrap", program, dict(os.environ))
    direct = wf.Target("direct", echo, dict(os.environ))
    times: list[tuple[int, int]] = []
    try:
        for _ in range(WARMUP):
            wrap.call(measured=False)
            direct.call(measured=False)
        os.kill(wrap.process.pid, signal.SIGUSR1)
        time.sleep(0.2)  # the signal handled before the first measured call
        for number in range(calls):
            direct.call(measured=True)
            sent = time.perf_counter_ns()
            wrap.request("tools/call", {"name": "echo", "arguments": {"text": f"edge {number}"}})
            times.append((sent, time.perf_counter_ns()))
        os.kill(wrap.process.pid, signal.SIGUSR2)
        stamps = _dumped(out)
    finally:
        wrap.close()
        direct.close()
    return _per_call(times, stamps), direct.took


def _dumped(out: Path) -> list[tuple[str, int, int]]:
    """The stamps the boot script dumps on SIGUSR2, once the file holds all of them (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return [(label, at, cpu) for label, at, cpu in json.loads(out.read_text())]
        except (FileNotFoundError, json.JSONDecodeError):  # not yet written, or half
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _per_call(
    times: list[tuple[int, int]], stamps: list[tuple[str, int, int]]
) -> list[tuple[int, int, dict[str, Stamp]]]:
    calls: list[tuple[int, int, dict[str, Stamp]]] = []
    at = 0
    for number, (sent, received) in enumerate(times):
        until = times[number + 1][0] if number + 1 < len(times) else received + 10**9
        while at < len(stamps) and stamps[at][1] < sent:
            at += 1
        found: dict[str, Stamp] = {}
        while at < len(stamps) and stamps[at][1] < until:
            label, wall, cpu = stamps[at]
            found.setdefault(label, (wall, cpu))
            at += 1
        calls.append((sent, received, found))
    return calls


def report(calls: list[tuple[int, int, dict[str, Stamp]]], direct: list[float], durability: str) -> None:
    whole = [(s, r, f) for s, r, f in calls if all(label in f for label in NEEDED)]
    if not whole:
        print("no call carried every stamp: this Bastion's wrap is not the relay's")
        return

    def p50(values: list[int]) -> str:
        return f"{statistics.median(values) / 1e3:7.0f} µs"

    def part(first: str, last: str) -> tuple[str, str]:
        wall = [f[last][0] - f[first][0] for _, _, f in whole]
        cpu = [f[last][1] - f[first][1] for _, _, f in whole]
        return p50(wall), p50(cpu)

    print(
        f"{len(whole)} of {len(calls)} calls stamped, audit.durability: {durability}, load average "
        f"{os.getloadavg()[0]:.2f}; the direct call p50 {statistics.median(direct) * 1e6:.0f} µs, "
        f"the wrap p50 {statistics.median([r - s for s, r, _ in whole]) / 1e3:.0f} µs"
    )
    print("   wall        loop CPU    part")
    print(f"{p50([f['stdin<'][0] - s for s, _, f in whole])}                client write -> line read")
    rows = [
        ("stdin<", "wire>", "line read -> server stdin written (front door, record, sync, guard)"),
        ("wire<", "reply line", "the server, stdin written -> reply line read (loop CPU: deferred work)"),
        ("reply line", "stdout>", "reply line -> answer being written (result checks, completion)"),
    ]
    for first, last, name in rows:
        wall, cpu = part(first, last)
        print(f"{wall}  {cpu}    {name}")
    print(f"{p50([r - f['stdout>'][0] for _, r, f in whole])}                answer being written -> client has it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600, help="measured calls (default 600)")
    parser.add_argument("--durability", default="power", help="audit.durability of the wrap (default power)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-wrap-edges-") as folder:
        calls, direct = measure(args.calls, args.durability, Path(folder))
    report(calls, direct, args.durability)


if __name__ == "__main__":
    main()
