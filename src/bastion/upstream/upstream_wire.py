"""How a forwarded request is dressed for the upstream's protocol era.

Bastion forwards requests raw (the agent's params, as sent) through the session's
dispatcher, so it stamps them the way the SDK's `ClientSession` stamps its own: the
2026-07-28 era carries version, client identity and capabilities in every request's
`_meta` plus routing headers on HTTP; the handshake era only the version header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from bastion.mcp_names import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
)

if TYPE_CHECKING:
    from mcp.shared.dispatcher import CallOptions

CLIENT_CAPABILITIES = types.ClientCapabilities(
    sampling=types.SamplingCapability(),
    elicitation=types.ElicitationCapability(
        form=types.FormElicitationCapability(), url=types.UrlElicitationCapability()
    ),
    roots=types.RootsCapability(list_changed=True),
)
"""What Bastion declares upstream: everything an agent behind it may be able to answer."""


class Stamp:
    """Stamps requests for one negotiated protocol version."""

    def __init__(self, protocol_version: str, client_info: types.Implementation) -> None:
        self.protocol_version = protocol_version
        self.modern = protocol_version in MODERN_PROTOCOL_VERSIONS
        self._envelope = {
            types.PROTOCOL_VERSION_META_KEY: protocol_version,
            types.CLIENT_INFO_META_KEY: client_info.model_dump(by_alias=True, mode="json", exclude_none=True),
            types.CLIENT_CAPABILITIES_META_KEY: CLIENT_CAPABILITIES.model_dump(
                by_alias=True, mode="json", exclude_none=True
            ),
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
