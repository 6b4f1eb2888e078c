"""An idle `bastion up` has imported only what serving agents needs (issue 17: idle memory).

What an idle gateway imports is most of its memory (`benchmarks/bench_idle_memory.py`): the
dashboard and its template engine are imported by the first page asked for, the tables of
lookalike characters by the first word mixing scripts, RE2 by the first `regex:` rule, the
rate-limit library by a `limits:` section, the OpenTelemetry SDK only when tracing is on,
and the SQL, shell and JWT parsers by the first call (or configuration) that needs them.
The modules are read from a real run (`python -X importtime`) after a session has listed
and called tools, so a new eager import anywhere on the path fails here; then the dashboard
is opened, and must work, imported on the spot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest

from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.clients import connect
from tests.e2e.conftest import STARTUP_TIMEOUT, LineReader, RunningGateway, write_config

ECHO_SERVER = Path(__file__).parents[2] / "benchmarks" / "servers" / "echo_server.py"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]

NOT_WHILE_IDLE = (
    "bastion.web",
    "jinja2",
    "itsdangerous",
    "confusable_homoglyphs",
    "re2",
    "limits",
    "opentelemetry.sdk",
    "bastion.observability.tracing",
    "websockets",
    "sqlglot",
    "bashlex",
    "celpy",
    "jwt",
    "bastion.auth.jwt_auth",
    "psycopg",
    "redis",
    # The SDK (client and server stacks, and cryptography under them) is Bastion's reference
    # path (`client: sdk`, legacy SSE upstreams, `BASTION_RELAY=0`, what the relay hands on):
    # imported by its first use, never by serving agents over the relay.
    "bastion.upstream.upstream_sdk",
    "bastion.upstream.popen_stdio",
    "bastion.proxy.sdk_server",
    "mcp",
    "cryptography",
    # The protocol's models, both eras' own and the protocol-wide ones: by the first 2026-era
    # request, a server's own request or message, or a handshake that is not of the plain shape
    # (`bastion.handshake_shapes`); a handshake-era session lists and calls tools without them.
    "mcp_types",
)


def imported(stderr: Path) -> list[str]:
    lines = stderr.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")]


def eager(modules: list[str]) -> list[str]:
    return sorted({m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_WHILE_IDLE)})


@pytest.mark.anyio
async def test_an_idle_gateway_has_not_imported_what_no_call_needed_yet(tmp_path: Path) -> None:
    # The benchmark's server: plain words in and out (text that reads as SQL or a shell command
    # would rightly load those parsers).
    config = write_config(tmp_path, {"echo": {"command": sys.executable, "args": [str(ECHO_SERVER), "stdio"]}})
    stderr = tmp_path / "stderr.txt"
    gateway = start_under_importtime(config, stderr)
    base_url = gateway.base_url
    try:
        with anyio.fail_after(120):
            async with connect(gateway, "echo") as client:
                assert "echo" in {tool.name for tool in (await client.list_tools()).tools}
                for _ in range(3):
                    result = await client.call_tool("echo", {"text": "hello from the test"})
                    assert not result.is_error
                    assert result.content[0].text == "hello from the test"  # type: ignore[union-attr]
        idle = imported(stderr)
        assert "bastion.gateway.gateway" in idle  # the measurement saw the gateway's imports
        assert eager(idle) == []
        assert not {"mcp", "mcp.server", "mcp.client", "cryptography"} & set(idle)

        # The dashboard is imported by its first page, and serves it.
        async with httpx2.AsyncClient(timeout=60) as http:
            page = await http.get(f"{base_url}/ui/login")
        assert page.status_code == 200
        assert "<form" in page.text
        assert {"bastion.web.app", "jinja2"} <= set(imported(stderr))
    finally:
        gateway.stop()


def start_under_importtime(config: Path, stderr: Path) -> RunningGateway:
    """`bastion up` under `python -X importtime` (its imports listed in `stderr`), once it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}  # tracing off, as by default
    with stderr.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "bastion.cli.main", "up", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
    reader = LineReader(process.stdout)
    try:
        base_url = reader.wait_for(r"serving on (http://\S+)", STARTUP_TIMEOUT)[1]
        token = reader.wait_for(r"^(bst_\S+)$", 10)[1]
    except BaseException:
        process.kill()
        raise
    return RunningGateway(config, base_url, token, process, reader, config.parent / "data")
