"""Exporting a large audit log (default 1,000,000 events) to CSV, SQLite and PostgreSQL.

Run: .venv/bin/python benchmarks/bench_audit_export.py [N] [--backend sqlite|postgresql|both]
         [--format csv|jsonl|json] [--keep DIR] [--repeat K]
Printed, not asserted. Target (issue 5): 1,000,000 events to CSV in under 15 s, in under 200 MB.

The log is SEEDED as in bench_audit_search.py (varied events, a real, verifiable chain,
appended through each backend's own chained append). `--keep DIR` keeps the seeded logs
(DIR/data/audit.db, and a PostgreSQL schema named in DIR/postgres-schema) and reuses them on the
next run with the same N, so repeated measurements skip the seeding.

The export runs `bastion audit export --format csv --output FILE` in a child process, as a
user would. Figures: wall time; the child's CPU time (user + system: the export's own cost,
whatever else the host is doing; on PostgreSQL the server's work is not in it); the file's
size; the child's peak resident set size (getrusage ru_maxrss of that child alone,
interpreter and imports included). STARTUP is what the `bastion` command costs before it does
anything (`bastion --version`): included in the export's figures.

Baselines in the same run, for hosts of other speeds: READ, the CPU time of just reading
every row through the store (`AuditReader.rows`, what any export must do), and CALIBRATION,
`sum(range(1_000_000))` (about 15 ms on a current desktop core).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bastion.audit import open_audit_store
from bastion.audit.query import EventQuery
from bench_audit_search import POSTGRES, drop_schema, postgres_url, prepare


def child_export(config: Path, fmt: str, out: Path) -> tuple[float, float, float, str]:
    """Run the CLI export in a child; (wall s, CPU s, peak RSS MB, stderr). Peak RSS is that child's alone."""
    bastion = str(Path(sys.executable).parent / "bastion")
    return child_run([bastion, "audit", "export", "--config", str(config), "--format", fmt, "--output", str(out)])


def child_run(command: list[str]) -> tuple[float, float, float, str]:
    """Run `command` in a child; (wall s, CPU s, peak RSS MB, stderr)."""
    script = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(done.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, flush=True)\n"
        "sys.stderr.write(done.stderr)\n"
    )
    began = time.perf_counter()
    # A fresh parent per export, so ru_maxrss is this export's peak, not an earlier child's.
    done = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    code, cpu, peak_kb = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"export failed ({code}): {done.stderr.strip()}")
    return wall, float(cpu), int(peak_kb) / 1024, done.stderr.strip()


def read_floor(url: str | None, folder: Path) -> float:
    """CPU seconds to read every row through the store, in this process."""
    store = open_audit_store(folder / "data", url=url)
    began = time.process_time()
    for _ in store.rows(EventQuery(), newest_first=False):
        pass
    return time.process_time() - began


def calibration() -> float:
    """Milliseconds for `sum(range(1_000_000))`, best of 5: how fast this host runs Python now."""
    return min(timeit.repeat("sum(range(1_000_000))", number=1, repeat=5)) * 1000


def measure(name: str, url: str | None, folder: Path, config: Path, total: int, fmt: str, repeat: int) -> None:
    read = read_floor(url, folder)
    print(f"{name:<10} READ every row through the store: {read:.1f} s CPU; CALIBRATION {calibration():.0f} ms")
    wall, cpu, peak_mb, _ = child_run([str(Path(sys.executable).parent / "bastion"), "--version"])
    print(f"{name:<10} STARTUP of the bastion command: {wall:.1f} s wall, {cpu:.1f} s CPU, {peak_mb:.0f} MB RSS")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"audit.{fmt}"
        for _ in range(repeat):
            wall, cpu, peak_mb, stderr = child_export(config, fmt, out)
            size_mb = out.stat().st_size / 1e6
            print(
                f"{name:<10} export {total:,} events to {fmt}: {wall:6.1f} s wall, {cpu:6.1f} s CPU (exporter), "
                f"{size_mb:,.0f} MB written, peak RSS {peak_mb:,.0f} MB; CPU {cpu / read:.1f}x READ  [{stderr}]"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("total", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--format", choices=["csv", "jsonl", "json"], default="csv")
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the seeded logs in this folder")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"audit export of {args.total:,} events; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    print("(wall time includes waiting for a CPU on a loaded host; CPU time is the exporting process's own)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.backend in ("sqlite", "both"):
            config = prepare("sqlite", None, folder, args.total)
            measure("sqlite", None, folder, config, args.total, args.format, args.repeat)
        if args.backend in ("postgresql", "both"):
            url = postgres_url(args.postgres, args.keep)
            if url is not None:
                try:
                    config = prepare("postgresql", url, folder, args.total)
                    measure("postgresql", url, folder, config, args.total, args.format, args.repeat)
                finally:
                    if args.keep is None:
                        drop_schema(args.postgres, url)


if __name__ == "__main__":
    main()
