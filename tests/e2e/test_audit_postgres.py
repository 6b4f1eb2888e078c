"""A real gateway writing its audit log to PostgreSQL: calls recorded, searchable, and a chain that verifies."""

from __future__ import annotations

import json
import uuid

import anyio
import pytest

from tests.e2e.clients import connect
from tests.e2e.conftest import VENV_BIN, start_gateway, write_config
from tests.unit.audit.postgres import postgres_schema

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_gateway_on_postgres(tmp_path):
    with postgres_schema() as url:
        servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
        gateway = start_gateway(write_config(tmp_path, servers, audit={"url": url}))
        try:
            nonce = uuid.uuid4().hex[:10]
            with anyio.fail_after(60):
                async with connect(gateway, "time") as client:
                    await client.call_tool("get_current_time", {"timezone": "UTC", "note": f"pg{nonce}"})
        finally:
            gateway.stop()

        types = [e["type"] for e in gateway.audit_events()]
        found = gateway.cli("audit", "search", "--text", f"pg{nonce}", "--format", "jsonl")
        verified = gateway.cli("audit", "verify")

    assert {"config.loaded", "token.created", "call.requested", "call.verdict", "call.completed"} <= set(types)
    assert found.returncode == 0, found.stderr
    [hit] = [json.loads(line) for line in found.stdout.splitlines()]
    assert hit["type"] == "call.requested"
    assert verified.returncode == 0, verified.stderr
    assert "postgresql://" in verified.stdout
