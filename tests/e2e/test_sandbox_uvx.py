"""A `uvx`-launched server works in the sandbox: uv downloads through the egress proxy into
the server's own cache, and the package runs read-only everywhere else.

(npx servers are covered by `everything` in the shared gateway; servers installed in
Bastion's virtualenv by `time`, `git` and `fetch`.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.events import EgressAllowed, RecordingSink
from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import VENV_BIN, non_public_addresses, write_config
from tests.e2e.inprocess import http_client, serving

UVX = shutil.which("uvx") or shutil.which("uvx", path=str(VENV_BIN))

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
    pytest.mark.skipif(UVX is None, reason="uvx is not installed (pip install uv)"),
]

INDEX_HOSTS = ["pypi.org", "files.pythonhosted.org"]


async def test_uvx_server_downloads_through_the_proxy_and_runs(tmp_path):
    allowed = INDEX_HOSTS + [a for host in INDEX_HOSTS for a in non_public_addresses(host)]
    server = {
        "command": UVX,
        "args": ["mcp-server-time"],
        # uv trusts its own CA bundle by default; use the system's (some networks re-sign TLS).
        "env": {"UV_SYSTEM_CERTS": "1"},
        "sandbox": {"network": "allowlist", "allow_domains": allowed},
    }
    config = load_config(write_config(tmp_path, {"uvtime": server}))
    sink = RecordingSink()
    with anyio.fail_after(120):
        async with serving(Gateway(config, runtime_sink=sink)) as gateway:
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            async with http_client(gateway, "uvtime", token) as client:
                result = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert not result.is_error, result
    assert {e.host for e in sink.of_type(EgressAllowed)} <= set(INDEX_HOSTS)
    assert sink.of_type(EgressAllowed), "the download went through the egress proxy"
    state = Path(config.data_dir) / "sandbox" / "uvtime"
    assert any(state.rglob("*mcp_server_time*")), "uv cached the package in the server's own folder"
