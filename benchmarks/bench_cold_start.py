"""Cold start: time until `initialize` is answered, the server run directly vs through `bastion wrap`.

Run: .venv/bin/python benchmarks/bench_cold_start.py [--rounds N] [--parallel 1 8] [--server CMD --read-only PATH]
     .venv/bin/python benchmarks/bench_cold_start.py --own-cpu 9 [--server CMD --read-only PATH]
Printed, not asserted. An agent starts each of its stdio servers as a process and sends
`initialize` at once; this does the same with `mcp-server-time` from Bastion's virtualenv
(or `--server`, e.g. the peers bench's echo: `--server "/tmp/bench-venv-client/bin/python
../shared/bench/upstream_echo.py" --read-only /tmp/bench-venv-client --read-only ../shared/bench`),
alone and several at once (as an agent starting its servers), directly and wrapped
(sandboxed, audited, state in a temporary folder). Each figure is the median over the
rounds of: per process, the time from spawning it to its `initialize` answer; and the time
until the last of the batch answered.

`--own-cpu N` prints instead the CPU time `bastion wrap` itself uses (all its threads, not
the server's) to start, answer `initialize` and exit at the end of its input, median of N
runs one at a time: on a host with few cores, what eight wraps started at once wait for is
mostly the sum of their CPU and their servers'.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SERVER = str(BIN / "mcp-server-time")
BASTION = os.environ.get("BASTION", str(BIN / "bastion"))
"""The `bastion` program run (`BASTION=...` for another checkout's, as in `bench_peers.sh`)."""
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
_OWN_CPU = """
import atexit, os, resource, sys
def report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    os.write(2, f"own-cpu {usage.ru_utime + usage.ru_stime:.4f}\\n".encode())
atexit.register(report)
sys.argv = ["bastion", *sys.argv[1:]]
try:
    from bastion.cli.program import main  # the console script's entry (it pauses the cycle collector)
except ImportError:  # a checkout from before it
    from bastion.cli.main import main
main()
"""


def command(mode: str, server: list[str], read_only: list[str]) -> list[str]:
    if mode == "direct":
        return server
    shared = [part for path in read_only for part in ("--read-only", path)]
    return [BASTION, "wrap", *shared, "--", *server]


def one_batch(mode: str, parallel: int, data_dir: Path, server: list[str], read_only: list[str]) -> list[float]:
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
            command(mode, server, read_only),
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


def own_cpu(runs: int, data_dir: Path, server: list[str], read_only: list[str]) -> list[float]:
    """Seconds of CPU `bastion wrap` itself used to answer `initialize` and exit, for each run."""
    wrap = command("wrap", server, read_only)[1:]
    env = {**os.environ, "BASTION_DATA_DIR": str(data_dir)}
    spent: list[float] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _OWN_CPU, *wrap],
            input=INITIALIZE + "\n",
            capture_output=True,  # stdout a pipe, as an agent's: the relay serves it
            text=True,
            env=env,
            timeout=TIMEOUT,
            check=False,
        )
        if '"id":1' not in done.stdout.replace(" ", ""):
            raise SystemExit(f"wrap did not answer initialize: {done.stderr[-2000:]}")
        spent.append(float(done.stderr.rsplit("own-cpu ", 1)[1].split()[0]))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="batches per configuration (default 5)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 8], help="processes started at once")
    parser.add_argument("--server", default=SERVER, help="the stdio server's command line (default mcp-server-time)")
    parser.add_argument("--read-only", action="append", default=[], help="a folder the sandboxed server may read")
    parser.add_argument("--own-cpu", type=int, metavar="N", help="print the wrap's own CPU to answer, N runs")
    args = parser.parse_args()
    server = shlex.split(args.server)
    read_only = [str(Path(path).resolve()) for path in args.read_only]
    rows: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        # Create the state folder and its databases: not a cold start's cost.
        one_batch("wrap", 1, data_dir, server, read_only)
        if args.own_cpu:
            spent = own_cpu(args.own_cpu, data_dir, server, read_only)
            print(
                f"bastion wrap's own CPU to start, answer initialize and exit: median {statistics.median(spent):.3f} s"
            )
            print(f"  runs: {' '.join(f'{value:.3f}' for value in spent)} (load average {os.getloadavg()[0]:.2f})")
            return
        for parallel in args.parallel:
            for mode in ("direct", "wrap"):
                per_process: list[float] = []
                last: list[float] = []
                for _ in range(args.rounds):
                    times = one_batch(mode, parallel, data_dir, server, read_only)
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
