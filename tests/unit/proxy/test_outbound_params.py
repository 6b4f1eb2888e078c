from __future__ import annotations

import pytest

from bastion.proxy.proxy import _inbound_result, outbound_params


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "t"}, {"name": "t"}),
        ({"name": "t", "_meta": {"progressToken": 7}}, {"name": "t"}),
        (
            {"name": "t", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "trace": 1}},
            {"name": "t", "_meta": {"trace": 1}},
        ),
        (None, {}),
    ],
)
def test_the_agents_hop_specific_meta_is_not_forwarded(params, expected):
    assert outbound_params(params) == expected


def test_upstream_era_stamps_are_removed_from_results():
    result = {"content": [], "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "x"}, "keep": 1}}
    assert _inbound_result(result) == {"content": [], "_meta": {"keep": 1}}
    assert _inbound_result({"content": [], "_meta": {"io.modelcontextprotocol/serverInfo": {}}}) == {"content": []}
