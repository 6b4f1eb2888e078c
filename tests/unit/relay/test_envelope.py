"""The 2026 envelope over stdio against the SDK's own inbound ladder (without headers), case by case."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server.runner import _has_modern_envelope, _initialize_after_modern_data
from mcp.shared.inbound import InboundLadderRejection, classify_inbound_request

from bastion.relay import envelope

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}

PARAMS: list[tuple[str, Any]] = [
    ("no params", None),
    ("empty params", {}),
    ("the envelope", {"_meta": META}),
    ("with client info", {"_meta": {**META, "io.modelcontextprotocol/clientInfo": {"name": "a", "version": "1"}}}),
    ("_meta not an object", {"_meta": "x"}),
    ("_meta a list", {"_meta": [1]}),
    ("no capabilities", {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
    ("no version", {"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}),
    ("a progress token only", {"_meta": {"progressToken": 1}}),
    ("a handshake version", {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": "2025-11-25"}}),
    ("an unknown version", {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}}),
    ("a version not a string", {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": 7}}),
    ("a null version", {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": None}}),
]


@pytest.mark.parametrize(("label", "params"), PARAMS, ids=[label for label, _ in PARAMS])
def test_the_envelope_is_judged_as_the_sdk_judges_it(label: str, params: Any) -> None:
    ours = envelope.served_version("tools/list", params)
    theirs = classify_inbound_request({"method": "tools/list", "params": params})
    if isinstance(theirs, InboundLadderRejection):
        assert isinstance(ours, envelope.Rejection)
        assert (ours.code, ours.message, ours.data) == (theirs.code, theirs.message, theirs.data)
    else:
        assert ours == theirs.protocol_version
    assert envelope.carries_envelope(params) is _has_modern_envelope(params)


@pytest.mark.parametrize("params", [None, {}, {"protocolVersion": "2025-11-25"}, {"protocolVersion": 3}])
def test_initialize_is_refused_with_the_sdk_s_error_data(params: Any) -> None:
    refused = envelope.served_version("initialize", params)
    assert isinstance(refused, envelope.Rejection)
    assert refused.code == -32022
    assert refused.data == _initialize_after_modern_data(params)
