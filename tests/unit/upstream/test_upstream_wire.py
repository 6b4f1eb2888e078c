from __future__ import annotations

import mcp_types as types
import pytest

from bastion.upstream.upstream_wire import Stamp

INFO = types.Implementation(name="bastion", version="0")


@pytest.mark.parametrize(
    ("method", "params", "name_header"),
    [
        ("tools/call", {"name": "read_file", "arguments": {"path": "/x"}}, "read_file"),
        ("resources/read", {"uri": "file:///x"}, "file:///x"),
        ("tools/list", {}, None),
    ],
)
def test_modern_requests_carry_the_envelope_and_routing_headers(method, params, name_header):
    out, headers = Stamp("2026-07-28", INFO).request(method, params)
    meta = out["_meta"]
    assert meta[types.PROTOCOL_VERSION_META_KEY] == "2026-07-28"
    assert meta[types.CLIENT_INFO_META_KEY]["name"] == "bastion"
    assert "sampling" in meta[types.CLIENT_CAPABILITIES_META_KEY]
    assert headers["mcp-method"] == method
    assert headers.get("mcp-name") == name_header
    assert {k: v for k, v in out.items() if k != "_meta"} == params


def test_handshake_requests_are_sent_as_the_agent_sent_them():
    params = {"name": "t", "arguments": {}, "_meta": {"trace": "x"}}
    out, headers = Stamp("2025-11-25", INFO).request("tools/call", params)
    assert out == params
    assert headers == {"mcp-protocol-version": "2025-11-25"}


def test_modern_stamp_keeps_the_agents_own_meta_keys():
    out, _ = Stamp("2026-07-28", INFO).request("tools/list", {"_meta": {"trace": "abc"}})
    assert out["_meta"]["trace"] == "abc"
