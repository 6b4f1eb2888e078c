"""The served servers' identity and capabilities, without the SDK, are what the SDK's `Server` gives.

The relay answers the handshake from `ServedIdentity`; the SDK's server (`sdk`, the reference
path) from the same fields. The aggregate's capabilities are derived from its handlers as the
SDK's `Server.get_capabilities` derives them (tools' `listChanged` on in the handshake era).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from mcp.server.lowlevel import Server
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from bastion.config import load_config
from bastion.proxy.aggregate import AggregateServer
from bastion.proxy.aggregate_catalogue import Catalogue

VERSIONS = [None, *HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS]


def aggregates(tmp_path: Path) -> list[AggregateServer]:
    path = tmp_path / "bastion.yaml"
    path.write_text('servers:\n  a: {command: a}\nvirtual_servers:\n  v: {tools: ["a__*"]}\n', encoding="utf-8")
    config = load_config(path)
    recorder: Any = MagicMock()
    everything = AggregateServer({}, Catalogue(config), recorder)
    virtual = AggregateServer({}, Catalogue(config, config.virtual_servers["v"].tools), recorder, virtual="v")
    return [everything, virtual]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_aggregate_capabilities_are_those_the_sdk_derives_from_its_handlers(
    tmp_path: Path, version: str | None
) -> None:
    for aggregate in aggregates(tmp_path):
        derived = Server.get_capabilities(aggregate.sdk, protocol_version=version)
        if version not in MODERN_PROTOCOL_VERSIONS and derived.tools is not None:
            derived.tools.list_changed = True  # servers drop out and come back
        assert aggregate.get_capabilities(protocol_version=version) == derived
        assert aggregate.sdk.get_capabilities(protocol_version=version) == derived
        # The wire form the relay answers with is the model's dump, key for key and in order.
        wire = aggregate.capabilities_wire(protocol_version=version)
        assert json.dumps(wire) == json.dumps(derived.model_dump(by_alias=True, mode="json", exclude_none=True))


def test_the_handshake_identity_and_stamp_match_the_sdk_servers(tmp_path: Path) -> None:
    for aggregate in aggregates(tmp_path):
        ours, theirs = aggregate.create_initialization_options(), aggregate.sdk.create_initialization_options()
        assert ours.server_name == theirs.server_name
        assert ours.server_version == theirs.server_version
        assert ours.capabilities == theirs.capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)
        assert (ours.title, ours.instructions, ours.description) == (theirs.title, theirs.instructions, None)
        assert aggregate.server_info_stamp == aggregate.sdk.server_info_stamp
        aggregate.title = "renamed"
        aggregate.identity_changed()
        assert aggregate.server_info_stamp["title"] == "renamed"
        assert aggregate.sdk.server_info_stamp["title"] == "renamed"


def test_a_denials_tool_result_is_what_the_sdks_model_dumps() -> None:
    """A denied call's result is built as a dict (no model on a wrap's call path): the same as
    `CallToolResult`'s dump, key for key, which each era's serializer then shapes."""
    import mcp_types as types

    from bastion.proxy.proxy import _tool_error

    message = 'Bastion denied this tool call: "rm -rf /" [check: policy]'
    model = types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)
    assert json.dumps(_tool_error(message)) == json.dumps(
        model.model_dump(by_alias=True, mode="json", exclude_none=True)
    )
