"""Agents may present JWTs from an identity provider instead of Bastion tokens."""

from __future__ import annotations

import time

import anyio
import httpx2
import jwt
import pytest

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.audit_calls import store_calls
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SECRET = "a-test-secret-that-is-long-enough-for-hs256!"
ISSUER = "https://idp.example.invalid/"


def mint(sub: str, *, audience: str = "bastion", servers: list[str] | None = None, ttl: float = 300) -> str:
    claims: dict[str, object] = {"sub": sub, "iss": ISSUER, "aud": audience, "exp": int(time.time() + ttl)}
    if servers is not None:
        claims["bastion_servers"] = servers
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_jwt_principal_is_served_audited_and_limited(tmp_path):
    servers = {
        "time": {"command": str(VENV_BIN / "mcp-server-time")},
        "time2": {"command": str(VENV_BIN / "mcp-server-time")},
    }
    jwt_config = {"issuer": ISSUER, "audience": "bastion", "secret": SECRET, "servers_claim": "bastion_servers"}
    config = load_config(write_config(tmp_path, servers, auth={"jwt": jwt_config}))
    gateway = Gateway(config)
    with anyio.fail_after(60):
        async with serving(gateway):
            async with http_client(gateway, "time", mint("idp-agent", servers=["time"])) as client:
                result = await client.call_tool("get_current_time", {"timezone": "UTC"})
                assert not result.is_error
            async with httpx2.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
                token = mint("idp-agent", servers=["time"])
                limited = await http.post("/servers/time2/mcp", headers={"Authorization": f"Bearer {token}"})
                assert limited.status_code == 403
                for bad in (mint("x", audience="other"), mint("x", ttl=-120), mint("x")[:-4] + "AAAA"):
                    refused = await http.post("/servers/time/mcp", headers={"Authorization": f"Bearer {bad}"})
                    assert refused.status_code == 401
                    assert "resource_metadata=" in refused.headers["www-authenticate"]
                metadata = (await http.get("/.well-known/oauth-protected-resource/servers/time/mcp")).json()
                assert metadata["authorization_servers"] == [ISSUER]
    records = [r for r in store_calls(gateway.audit) if r["method"] == "tools/call"]
    assert [r["agent"] for r in records] == ["idp-agent"]
