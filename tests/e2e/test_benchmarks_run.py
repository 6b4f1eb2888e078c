"""Every benchmark still runs: each, at its smallest size, exits 0 and prints its figures.

Benchmarks are run by hand, so nothing else notices when a change to the code they drive
breaks them (two seeding helpers once called a backend method with an outdated signature).
The figures printed here are meaningless at these sizes and are not checked; only that the
benchmark ran to the end and printed the line that carries its result.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

# (script and smallest arguments, a text its last figures contain, or a pattern they match)
RUNS = [
    (["bench_approvals.py", "20"], "ratio"),
    (["bench_audit_ingest.py", "640"], "events/s"),
    (["bench_audit_search.py", "300"], "p50"),
    (["bench_audit_export.py", "300"], "export 300 events to csv"),
    (["bench_catalogue.py", "5"], "median"),
    (["bench_pinning.py", "50"], "median"),
    (["bench_policy.py", "50"], "files/write_file"),
    (["bench_dashboard.py", "300", "--runs", "2"], "export CSV"),
    (["bench_shared_state.py", "20", "3"], "PostgreSQL"),
    (["bench_sandbox.py", "5"], "ratio"),
    (["bench_cold_start.py", "--rounds", "1", "--parallel", "1"], "time to initialize answered"),
    (["bench_idle_memory.py", "--calls", "3", "--top", "3"], "watched groups imported while idle"),
    (["bench_stages.py", "--calls", "20", "--durability", "process"], "load average"),
    # a figure, not "-": the fine stamps were made and found
    (["bench_stages.py", "--calls", "20", "--fronts", "wrap", "--fine"], re.compile(r"\d µs    result checks\n")),
    # every stamp found: the relay's wrap, cut at its edges
    (["bench_wrap_edges.py", "--calls", "20"], re.compile(r"20 of 20 calls stamped")),
    (
        ["bench_compare.py", "--against", str(Path(sys.executable).parent / "bastion"), "--calls", "10"],
        re.compile(r"wrap: this tree minus PROGRAM, p50 [+-]\d+ µs"),
    ),
    (["bench_own_work.py", "--calls", "20", "--observe", "off,tracing"], "own CPU per call"),
    (["bench_call_parts.py", "--calls", "20", "--rounds", "1"], "encode x3"),
    (["bench_large_payload.py", "--calls", "2", "--kb", "4"], "prose 4 KB"),
    (["bench_large_payload.py", "--parts", "--kb", "4"], "result checks"),
    (["bench_large_payload.py", "--mixed", "--calls", "1", "--kb", "4"], "large calls answered meanwhile"),
    (["bench_write_ahead.py", "--records", "20", "--rounds", "1"], "inline / handed"),
    (["bench_sdk_floor.py", "--calls", "20"], "SDK-only proxy"),
    (["bench_upstream_session.py", "--calls", "50"], "raw/sdk CPU ratio"),
    (["bench_stdio_front.py", "--requests", "50", "--runs", "2"], "CPU per request"),
    (["bench_gateway.py", "--calls", "20", "--modes", "2026-07-28", "--durability", "process"], "total"),
    (["bench_ratelimit.py", "--agents", "2", "--calls", "2", "--rounds", "1"], "load average"),
    (["bench_taint_store.py", "20"], "ratio provenance redis/memory"),
    (["bench_scale_out.py", "--agents", "2", "--calls", "2", "--rounds", "1"], "load average"),
    (["fuzz_front_door.py", "--cases", "10"], "cases/s"),
]


@pytest.mark.parametrize(("argv", "expected"), RUNS, ids=[run[0][0].removesuffix(".py") for run in RUNS])
def test_the_benchmark_runs_to_the_end(argv: list[str], expected: str | re.Pattern[str], tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=BENCHMARKS,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    found = expected.search(output) is not None if isinstance(expected, re.Pattern) else expected in output
    assert found, output[-4000:]
