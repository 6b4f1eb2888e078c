"""`bastion up` and `bastion wrap` import the gateway with the cycle collector paused (a start-up
cost), and leave the collector as they found it: a gateway left without it would grow."""

from __future__ import annotations

import gc
import subprocess
import sys

from bastion.cli.main import _gateway_class
from bastion.gateway.gateway import Gateway


def test_the_collector_is_on_again_after_the_import() -> None:
    assert gc.isenabled()
    assert _gateway_class() is Gateway
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_embedding_program_stays_off() -> None:
    gc.disable()
    try:
        assert _gateway_class() is Gateway
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_is_paused_while_the_gateway_is_first_imported() -> None:
    script = (
        "import gc, sys\n"
        "seen = []\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'bastion.gateway.gateway':\n"
        "            seen.append(gc.isenabled())\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from bastion.cli.main import _gateway_class\n"
        "_gateway_class()\n"
        "print(seen, gc.isenabled())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["[False]", "True"]
