"""Bastion's own copies of the MCP names its relay and upstream client use equal the SDK's, and the
modules that use them start a server and speak to it without importing the SDK (issue 17: idle memory)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mcp.client import stdio as sdk_stdio
from mcp.client.streamable_http import MCP_SESSION_ID
from mcp.shared.inbound import MCP_METHOD_HEADER, MCP_NAME_HEADER, MCP_PROTOCOL_VERSION_HEADER

from bastion import mcp_names


def test_the_header_names_are_the_sdks() -> None:
    assert mcp_names.MCP_SESSION_ID == MCP_SESSION_ID
    assert mcp_names.MCP_PROTOCOL_VERSION_HEADER == MCP_PROTOCOL_VERSION_HEADER
    assert mcp_names.MCP_METHOD_HEADER == MCP_METHOD_HEADER
    assert mcp_names.MCP_NAME_HEADER == MCP_NAME_HEADER


WIRE_CONSTANTS = (
    "PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS", "INTERNAL_ERROR",
    "CONNECTION_CLOSED", "REQUEST_TIMEOUT", "HEADER_MISMATCH", "UNSUPPORTED_PROTOCOL_VERSION",
    "PROTOCOL_VERSION_META_KEY", "CLIENT_INFO_META_KEY", "CLIENT_CAPABILITIES_META_KEY", "SERVER_INFO_META_KEY",
)  # fmt: skip
VERSION_CONSTANTS = (
    "HANDSHAKE_PROTOCOL_VERSIONS", "MODERN_PROTOCOL_VERSIONS", "LATEST_HANDSHAKE_VERSION", "LATEST_MODERN_VERSION",
)  # fmt: skip


@pytest.mark.parametrize("name", WIRE_CONSTANTS)
def test_the_error_codes_and_meta_keys_are_the_sdks(name: str) -> None:
    import mcp_types

    assert getattr(mcp_names, name) == getattr(mcp_types, name)


@pytest.mark.parametrize("name", VERSION_CONSTANTS)
def test_the_protocol_versions_are_the_sdks(name: str) -> None:
    from mcp_types import version

    assert getattr(mcp_names, name) == getattr(version, name)


def test_the_relays_error_codes_are_these() -> None:
    from bastion.relay import jsonrpc

    for name in ("PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS", "INTERNAL_ERROR"):
        assert getattr(jsonrpc, name) == getattr(mcp_names, name)


def test_a_server_inherits_what_the_sdk_would_pass_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(mcp_names.DEFAULT_INHERITED_ENV_VARS) == list(sdk_stdio.DEFAULT_INHERITED_ENV_VARS)
    monkeypatch.setenv("HOME", "/home/agent")
    monkeypatch.setenv("SHELL", "() { :; }; echo pwned")  # a shell function: never inherited
    monkeypatch.delenv("TERM", raising=False)
    monkeypatch.setenv("SECRET_TOKEN", "not for servers")
    inherited = mcp_names.default_environment()
    assert inherited == sdk_stdio.get_default_environment()
    assert inherited["HOME"] == "/home/agent"
    assert "SHELL" not in inherited
    assert "TERM" not in inherited
    assert "SECRET_TOKEN" not in inherited


SDK_FREE = """
import sys
from pathlib import Path

from bastion.config import StdioServerConfig
from bastion.runtime.server_runtime import RuntimeSettings, ServerRuntime
import bastion.upstream.http_session, bastion.upstream.http_wire, bastion.upstream.origin, bastion.upstream.stdio_wire
import bastion.upstream.upstream, bastion.proxy.recording, bastion.proxy.downstream, bastion.upstream.handshake
import bastion.upstream.server_messages, bastion.relay.session, bastion.upstream.upstream_wire

config = StdioServerConfig.model_validate({"command": "echo", "args": ["hi"], "sandbox": {"enabled": False}})
command, start = ServerRuntime("echo", config, RuntimeSettings(Path(sys.argv[1]))).launch("/bin/echo")
assert (command.command, command.args, start) == ("/bin/echo", ["hi"], None), command
print(sorted(m for m in sys.modules if m == "mcp" or m.startswith("mcp.")))
"""


def test_launching_a_server_and_the_upstream_client_import_no_sdk(tmp_path: Path) -> None:
    # Any `mcp.*` import runs the package's __init__: the SDK's client and server stacks, 65 MB.
    run = subprocess.run(
        [sys.executable, "-c", SDK_FREE, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_name_header_is_the_sdks() -> None:
    from mcp.shared.inbound import NAME_BEARING_METHODS, encode_header_value

    assert dict(mcp_names.NAME_BEARING_METHODS) == dict(NAME_BEARING_METHODS)
    for value in ("echo", " edge ", "naïve", "a\tb", "=?base64?eA==?=", "", "file:///tmp/x y"):
        assert mcp_names.encode_header_value(value) == encode_header_value(value), value
