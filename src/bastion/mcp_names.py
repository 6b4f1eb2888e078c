"""Names of the MCP wire that Bastion's own relay and upstream client use, without the SDK.

Importing any part of the `mcp` package runs its `__init__`, which imports the SDK's client
and server stacks (and through them `cryptography`): about 65 MB resident. Importing any part
of `mcp_types` (its `version` module too) builds every protocol-wide model: a quarter of what
a `bastion wrap` imports before it can answer `initialize`. Modules on the path an idle
gateway, or a starting wrap, has loaded take these plain names from here instead; a unit
test keeps them equal to the SDK's (`tests/unit/test_mcp_names.py`).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "CLIENT_CAPABILITIES_META_KEY",
    "CLIENT_INFO_META_KEY",
    "CONNECTION_CLOSED",
    "DEFAULT_INHERITED_ENV_VARS",
    "HANDSHAKE_PROTOCOL_VERSIONS",
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "LATEST_HANDSHAKE_VERSION",
    "LATEST_MODERN_VERSION",
    "MCP_METHOD_HEADER",
    "MCP_NAME_HEADER",
    "MCP_PROTOCOL_VERSION_HEADER",
    "MCP_SESSION_ID",
    "METHOD_NOT_FOUND",
    "MODERN_PROTOCOL_VERSIONS",
    "NAME_BEARING_METHODS",
    "PARSE_ERROR",
    "PROTOCOL_VERSION_META_KEY",
    "REQUEST_TIMEOUT",
    "SERVER_INFO_META_KEY",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "default_environment",
    "encode_header_value",
]

# JSON-RPC error codes (`mcp_types.jsonrpc`).
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
CONNECTION_CLOSED: Final = -32000
REQUEST_TIMEOUT: Final = -32001
HEADER_MISMATCH: Final = -32020
UNSUPPORTED_PROTOCOL_VERSION: Final = -32022

# Reserved `_meta` keys of the 2026-07-28 era (`mcp_types`).
PROTOCOL_VERSION_META_KEY: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_META_KEY: Final = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_META_KEY: Final = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_META_KEY: Final = "io.modelcontextprotocol/serverInfo"

# The protocol revisions by era (`mcp_types.version`).
HANDSHAKE_PROTOCOL_VERSIONS: Final[tuple[str, ...]] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""Reachable through the `initialize` handshake, oldest to newest."""
MODERN_PROTOCOL_VERSIONS: Final[tuple[str, ...]] = ("2026-07-28",)
"""Stateless (the per-request envelope and `server/discover`), oldest to newest."""
LATEST_HANDSHAKE_VERSION: Final = HANDSHAKE_PROTOCOL_VERSIONS[-1]
LATEST_MODERN_VERSION: Final = MODERN_PROTOCOL_VERSIONS[-1]

MCP_SESSION_ID: Final = "mcp-session-id"
"""The Streamable HTTP session header (lowercase, as the SDK's `mcp.client.streamable_http`)."""
MCP_PROTOCOL_VERSION_HEADER: Final = "mcp-protocol-version"
MCP_METHOD_HEADER: Final = "mcp-method"
MCP_NAME_HEADER: Final = "mcp-name"

DEFAULT_INHERITED_ENV_VARS: Final = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
"""What a stdio server inherits of Bastion's environment on POSIX (the SDK's `mcp.client.stdio` list)."""


def default_environment() -> dict[str, str]:
    """The inherited variables that are set, shell functions (`() {...`) left out, as the SDK's
    `get_default_environment`."""
    inherited = ((key, os.environ.get(key)) for key in DEFAULT_INHERITED_ENV_VARS)
    return {key: value for key, value in inherited if value is not None and not value.startswith("()")}


NAME_BEARING_METHODS: Final[Mapping[str, str]] = MappingProxyType(
    {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
)
"""Method -> the params key whose value a 2026-era request mirrors in its `Mcp-Name` header."""

_B64_SENTINEL = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")
_HEADER_SAFE = re.compile(r"^[\x20-\x7E]*$")


def encode_header_value(value: str) -> str:
    """`value` as an HTTP header carries it: verbatim when printable ASCII without edge whitespace
    (and not itself shaped like the sentinel), else `=?base64?...?=` (the SDK's encoding)."""
    if _HEADER_SAFE.fullmatch(value) and value == value.strip() and not _B64_SENTINEL.fullmatch(value):
        return value
    return f"=?base64?{base64.b64encode(value.encode('utf-8')).decode('ascii')}?="
