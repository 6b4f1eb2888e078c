"""Cold start: time until `initialize` is answered, the server run directly vs through `bastion wrap`.

Run: .venv/bin/python benchmarks/bench_cold_start.py [--rounds N] [--parallel 1 8]
Printed, not asserted. An agent starts each of its stdio servers as a process and sends
`initialize` at once; this does the same with `mcp-server-time` from Bastion's virtualenv,
alone and several at once (as an agent starting its servers), directly and wrapped
(sandboxed, audited, state in a temporary folder). Each figure is the median over the
rounds of: per process, the time from spawning it to its `initialize` answer; and the time
until the last of the batch answered.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SERVER = str(BIN / "mcp-server-time")
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
)
TIMEOUT = 120.0


def command(mode: str) -> list[str]:
    if mode == "direct":
        return [SERVER]
    return [str(BIN / "bastion"), "wrap", "--", SERVER]


def one_batch(mode: str, parallel: int, data_dir: Path) -> list[float]:
    """Seconds from spawn to the `initialize` answer, for each of `parallel` processes started at once."""
    env = {**os.environ, "BASTION_DATA_DIR": str(data_dir)}
    answered: list[float] = [float("nan")] * parallel
    processes: list[subprocess.Popen[str]] = []
    readers: list[threading.Thread] = []

    def wait_answer(index: int, process: subprocess.Popen[str], began: float) -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line and '"id":1' in line.replace(" ", ""):
            answered[index] = time.perf_counter() - began

    for index in range(parallel):
        began = time.perf_counter()
        process = subprocess.Popen(
            command(mode),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert process.stdin is not None
        process.stdin.write(INITIALIZE + "\n")
        process.stdin.flush()
        processes.append(process)
        reader = threading.Thread(target=wait_answer, args=(index, process, began), daemon=True)
        reader.start()
        readers.append(reader)
    for reader in readers:
        reader.join(TIMEOUT)
    for process in processes:
        assert process.stdin is not None
        process.stdin.close()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if any(value != value for value in answered):  # NaN: a process never answered
        raise SystemExit(f"{mode}: a process did not answer initialize within {TIMEOUT:g} s")
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="batches per configuration (default 5)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 8], help="processes started at once")
    args = parser.parse_args()
    rows: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        one_batch("wrap", 1, data_dir)  # create the state folder and its databases: not a cold start's cost
        for parallel in args.parallel:
            for mode in ("direct", "wrap"):
                per_process: list[float] = []
                last: list[float] = []
                for _ in range(args.rounds):
                    times = one_batch(mode, parallel, data_dir)
                    per_process.append(statistics.median(times))
                    last.append(max(times))
                rows[mode, parallel] = statistics.median(per_process), statistics.median(last)
    print(f"time to initialize answered (median of {args.rounds} rounds; load average {os.getloadavg()[0]:.2f})")
    print(f"{'mode':8} {'at once':>7} {'per process s':>14} {'last answered s':>16} {'wrap - direct s':>16}")
    for (mode, parallel), (median, last) in rows.items():
        extra = f"{median - rows['direct', parallel][0]:16.3f}" if mode == "wrap" else f"{'':16}"
        print(f"{mode:8} {parallel:7d} {median:14.3f} {last:16.3f} {extra}")


if __name__ == "__main__":
    main()
