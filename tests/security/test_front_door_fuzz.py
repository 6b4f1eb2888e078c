"""The HTTP front door under fuzz (issue 13, item 6): a few hundred hostile requests.

Bodies (JSON-RPC messages bent every way, batches, non-JSON, deep nesting), headers and
session ids (ours, another agent's, garbage) from `fuzz_cases`. The gateway must never answer
5xx to bad input, never forward a call it did not audit (the counting server's tally against
the audit log), and keep serving. The derandomized run is the same every time; the longer,
random run is `benchmarks/fuzz_front_door.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.security.fuzz_cases import Case, cases, fuzz_target

pytestmark = pytest.mark.e2e

CASES = 300


def test_bad_input_never_gets_a_5xx_nor_an_unaudited_call_and_the_gateway_keeps_serving(tmp_path: Path) -> None:
    with fuzz_target(tmp_path) as target:

        @settings(
            max_examples=CASES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=cases)
        def the_front_door_holds(case: Case) -> None:
            status = target.send(case)
            assert status < 500, f"{status} for {case}"
            assert target.calls_received() <= target.calls_audited(), f"an unaudited call reached the server: {case}"

        the_front_door_holds()
        assert target.sent >= CASES
        assert target.calls_received() > 0, "some cases were calls the gateway let through"
        assert target.still_serves()
        assert target.calls_received() <= target.calls_audited()
