"""Fuzz the HTTP front door for longer than CI does, printing cases/s and what was found.

Run: .venv/bin/python benchmarks/fuzz_front_door.py [--cases N] [--seconds S]
The same strategies and properties as tests/security/test_front_door_fuzz.py (random here,
not derandomized), against a real gateway in front of a server that counts the calls it
receives. Every finding is collected, not just the first: a 5xx, a request left without an
answer, a call that reached the server unaudited, a gateway that stopped serving. Exits 1
when there is any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, settings
from tests.security.fuzz_cases import Case, FuzzTarget, cases, fuzz_target


def _short(case: Case) -> str:
    text = repr(case)
    return text if len(text) <= 400 else text[:400] + "..."


def fuzz(target: FuzzTarget, count: int, seconds: float, findings: list[str]) -> None:
    deadline = time.perf_counter() + seconds

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def one(case: Case) -> None:
        if time.perf_counter() > deadline:
            return
        try:
            status = target.send(case)
        except Exception as exc:  # no answer at all is a finding, not the end of the run
            findings.append(f"no answer ({type(exc).__name__}: {exc}) to {_short(case)}")
            return
        if status >= 500:
            findings.append(f"HTTP {status} for {_short(case)}")

    one()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000, help="cases to generate (default 5000)")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long (default 600)")
    args = parser.parse_args()
    findings: list[str] = []
    with tempfile.TemporaryDirectory() as folder, fuzz_target(Path(folder)) as target:
        began = time.perf_counter()
        fuzz(target, args.cases, args.seconds, findings)
        elapsed = time.perf_counter() - began
        received, audited = target.calls_received(), target.calls_audited()
        if received > audited:
            findings.append(f"{received - audited} call(s) reached the server without an audit record")
        if not target.still_serves():
            findings.append("the gateway no longer serves a well-formed call")
    print(f"{target.sent} cases in {elapsed:.1f} s: {target.sent / elapsed:.1f} cases/s")
    print(f"calls that reached the server: {received}; tools/call requests audited: {audited}")
    print(f"findings: {len(findings)}")
    for finding in findings[:100]:
        print(f"  - {finding}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
