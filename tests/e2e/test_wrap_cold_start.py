"""`bastion wrap` imports only what answering `initialize` needs (issue 16, item 2).

An agent starts one `bastion wrap` per server and waits for each to answer `initialize`;
everything imported before that is time it waits. The dashboard, PostgreSQL, Redis, CEL,
JWT, SQL and shell parsing, and the MCP SDK (its protocol models too) are imported when first
used, never on this path. The modules are read from a real run (`python -X importtime`), so a
new eager import anywhere on the path (including one merged from another branch) fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import VENV_BIN

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]

NOT_ON_THE_PATH = (
    "bastion.web",
    "bastion.state.postgres",
    "bastion.auth.jwt_auth",
    "jinja2",
    "itsdangerous",
    "psycopg",
    "psycopg_pool",
    "redis",
    "celpy",
    "sqlglot",
    "bashlex",
    "jwt",
    # No part of the MCP SDK: not its client and server stacks, not both protocol eras' own models
    # (tests/unit/relay/test_handshake_models.py says why the handshake needs none), and not the
    # protocol-wide models: the plain handshake is read and answered without them
    # (tests/unit/test_handshake_shapes.py says why that is the same).
    "mcp",
    "mcp_types",
    # The policy catalogue's parsers and families (its registry, the call view): loaded by the
    # first call judged. The audit redactor's secrets are not.
    "bastion.guard.policy.catalogue.registry",
    "bastion.guard.policy.catalogue.scanner",
    "bastion.guard.policy.catalogue.view",
    "bastion.guard.policy.catalogue.shell_parse",
    "bastion.guard.policy.catalogue.sql_parse",
    # The result checks' readers: the injection detectors and their patterns, and the requested-action
    # reader (dates, amounts, names): loaded by the first result read and the first call judged.
    "bastion.guard.results.scan",
    "bastion.guard.results.detectors",
    "bastion.guard.results.hidden",
    "bastion.guard.results.requests",
    "bastion.guard.results.dates",
    "bastion.guard.policy.catalogue.injection",
)

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def test_wrap_answers_initialize_without_importing_what_it_does_not_need(tmp_path):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bastion", "wrap", "--", str(VENV_BIN / "mcp-server-time")],
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BASTION_DATA_DIR": str(tmp_path / "data")},
        timeout=90,
        check=False,
    )
    assert json.loads(done.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "mcp-time", done.stderr[-3000:]
    order = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    imported = set(order)
    assert "bastion.gateway.gateway" in imported  # the measurement saw the path
    eager = sorted(m for m in imported if any(m == n or m.startswith(n + ".") for n in NOT_ON_THE_PATH))
    assert eager == []
    assert "bastion.runtime.prestart" in imported  # the server's sandbox is started first thing


def test_the_wrap_turns_the_cycle_collector_on_again_once_its_gateway_runs(tmp_path):
    """The program starts with the collector paused (`bastion.cli.collector`); a wrap left without
    it would grow for as long as the agent keeps it. Run as the agent runs it: the console script."""
    done = subprocess.run(
        [str(VENV_BIN / "bastion"), "wrap", "--", str(VENV_BIN / "mcp-server-time")],
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "BASTION_DATA_DIR": str(tmp_path / "data"),
            "BASTION_DEBUG": "1",
        },
        timeout=90,
        check=False,
    )
    assert json.loads(done.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "mcp-time", done.stderr[-3000:]
    resumed = [line for line in done.stderr.splitlines() if "bastion.cli.collector: cycle collector on" in line]
    assert len(resumed) == 1, done.stderr[-3000:]
    assert int(resumed[0].split("collector on: ", 1)[1].split()[0]) > 10_000  # what the start built, frozen
