"""One Ctrl-C stops a test run in the middle of an end-to-end test, and its `bastion up` child with it.

Before, an in-process gateway's uvicorn took the SIGINT for itself: the test failed (its
gateway stopped, or the interrupt came back wrapped in an exception group) and pytest went
on to the next test. Here pytest runs `interrupt_probe.py` in a session of its own, is sent
one SIGINT once the probe's gateways are up (to its whole process group, as a terminal's
Ctrl-C is, or to pytest alone), and must stop: exit code 2, no further test, no child left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import LineReader
from tests.e2e.interrupt_probe import READY, SECOND_TEST

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("interrupt_probe.py")
INTERRUPTED = int(pytest.ExitCode.INTERRUPTED)


@pytest.mark.parametrize("whom", ["process-group", "pytest-alone"])
def test_one_sigint_stops_the_run_and_its_bastion_up_child(whom: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t")]
    process = subprocess.Popen(
        [*command, str(PROBE)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a foreground job
    )
    reader = LineReader(process.stdout)
    try:
        child = int(reader.wait_for(rf"{READY} (\d+)", 150)[1])
        if whom == "process-group":
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(process.pid, signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(EOFError):
        reader.wait_for("(?!)", 30)  # to the end of its output
    output = "\n".join(reader.lines)
    assert code == INTERRUPTED, output
    assert SECOND_TEST not in output
    assert not Path(f"/proc/{child}").exists(), f"bastion up (pid {child}) was left running"
