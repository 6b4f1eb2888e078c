"""How a forwarded request is dressed for the upstream's protocol era.

Bastion forwards requests raw (the agent's params, as sent) through the session's
dispatcher, so it stamps them the way the SDK's `ClientSession` stamps its own: the
2026-07-28 era carries version, client identity and capabilities in every request's
`_meta` plus routing headers on HTTP; the handshake era only the version header.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from bastion.mcp_names import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    MODERN_PROTOCOL_VERSIONS,
    NAME_BEARING_METHODS,
    PROTOCOL_VERSION_META_KEY,
    encode_header_value,
)

if TYPE_CHECKING:
    from mcp.shared.dispatcher import CallOptions

CLIENT_CAPABILITIES: Final[Mapping[str, Any]] = MappingProxyType(
    {"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {"listChanged": True}}
)
"""What Bastion declares upstream: everything an agent behind it may be able to answer (the
SDK's `ClientCapabilities` as the wire has it; `tests/unit/upstream/test_upstream_wire.py`)."""


class Stamp:
    """Stamps requests for one negotiated protocol version."""

    def __init__(self, protocol_version: str, client_info: Mapping[str, Any]) -> None:
        self.protocol_version = protocol_version
        self.modern = protocol_version in MODERN_PROTOCOL_VERSIONS
        self._envelope = {
            PROTOCOL_VERSION_META_KEY: protocol_version,
            CLIENT_INFO_META_KEY: copy.deepcopy(dict(client_info)),
            CLIENT_CAPABILITIES_META_KEY: copy.deepcopy(dict(CLIENT_CAPABILITIES)),
        }

    def request(self, method: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The params to send and the HTTP headers to send them with."""
        headers = {MCP_PROTOCOL_VERSION_HEADER: self.protocol_version}
        if not self.modern:
            return dict(params), headers
        out = dict(params)
        out["_meta"] = {**(out.get("_meta") or {}), **self._envelope}
        headers[MCP_METHOD_HEADER] = method
        name_key = NAME_BEARING_METHODS.get(method)
        if name_key is not None and isinstance(name := out.get(name_key), str):
            headers[MCP_NAME_HEADER] = encode_header_value(name)
        return out, headers

    def options(self, headers: dict[str, str], timeout: float) -> CallOptions:
        return {"headers": headers, "timeout": timeout}
