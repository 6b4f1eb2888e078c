"""The `bastion` program starts with the cycle collector paused (`bastion.cli.collector`): a
command's start builds a few hundred thousand objects and no garbage. It is on again, what was
built frozen, once the command's code is loaded; for `up` and `wrap`, once their gateway runs
(tests/e2e/test_wrap_cold_start.py). Only the program pauses it: importing the CLI does not."""

from __future__ import annotations

import gc
import subprocess
import sys

from bastion.cli import collector
from bastion.cli.main import _gateway_class
from bastion.gateway.gateway import Gateway


def test_importing_the_cli_leaves_the_collector_alone() -> None:
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    assert _gateway_class() is Gateway
    collector.resume()  # not paused by the program: nothing to do
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def _run_program(*argv: str) -> list[str]:
    """`bastion ARGV` through the program's entry point; what the collector was doing when the
    CLI was imported, and at exit (on, objects frozen)."""
    script = (
        "import atexit, gc, sys\n"
        "seen = []\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'bastion.cli.main':\n"
        "            seen.append(gc.isenabled())\n"
        "sys.meta_path.insert(0, Watch())\n"
        "atexit.register(lambda: print(seen, gc.isenabled(), gc.get_freeze_count() > 10_000))\n"
        f"sys.argv = ['bastion', *{list(argv)!r}]\n"
        "from bastion.cli.program import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.split()[-3:]


def test_the_program_pauses_the_collector_while_a_command_loads_and_turns_it_on_to_run_it() -> None:
    assert _run_program("policy", "--help") == ["[False]", "True", "True"]


def test_a_gateway_command_leaves_the_collector_paused_for_its_gateway_to_be_built() -> None:
    # `up --help` ends before a gateway runs: nothing turned the collector on.
    assert _run_program("up", "--help") == ["[False]", "False", "False"]
