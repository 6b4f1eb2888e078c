"""A store that cannot write refuses calls (fail closed), unless configured to let them through."""

from __future__ import annotations

import anyio
import httpx2
import pytest

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.audit_calls import fail_sqlite_commits, store_calls
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.mark.parametrize(("on_failure", "refused"), [("refuse", True), ("allow", False)])
async def test_unwritable_audit_store(tmp_path, monkeypatch, on_failure, refused):
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    config = load_config(write_config(tmp_path, servers, audit={"on_failure": on_failure}))
    gateway = Gateway(config)
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            async with http_client(gateway, "time", token) as client:
                fail_sqlite_commits(monkeypatch, gateway.audit.inner.backend)
                if refused:
                    with pytest.raises(Exception, match="audit log cannot be written"):
                        await client.call_tool("get_current_time", {"timezone": "UTC"})
                else:
                    result = await client.call_tool("get_current_time", {"timezone": "UTC"})
                    assert not result.is_error
                monkeypatch.undo()
                # The store is back: calls are served and recorded again, with no restart.
                again = await client.call_tool("get_current_time", {"timezone": "Europe/Paris"})
                assert not again.is_error
            async with httpx2.AsyncClient(timeout=10) as http:
                status_key = {"Authorization": f"Bearer {gateway.status_key}"}
                ready = (await http.get(f"{gateway.base_url}/readyz", headers=status_key)).json()
            assert ready["audit_store"] == "writable"
    zones = [r["arguments"]["timezone"] for r in store_calls(gateway.audit) if r["method"] == "tools/call"]
    assert "Europe/Paris" in zones
