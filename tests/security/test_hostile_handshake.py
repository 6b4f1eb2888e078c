"""A server's handshake answer, however hostile, is read by Bastion's own client as the SDK's reads it.

Bastion reads an upstream's `InitializeResult` / `DiscoverResult` without the SDK's models when
it has the plain shape (`bastion.handshake_shapes`), and with them otherwise. A hostile server
(tests/security/servers/handshake_server.py, no SDK) answers the handshake with values built
to slip between the two: deep nesting, coercible flags and numbers, nulls, snake-case and extra
keys, icons, wrong types, a megabyte of instructions. For each, in both eras, the session is
opened by Bastion's own client and by the SDK's (`client: sdk`, the reference), and what each
makes of the server (version, identity, capabilities, instructions), or its refusal, must be the
same; nothing takes the test process down.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.config import StdioServerConfig
from bastion.mcp_names import SERVER_INFO_META_KEY
from bastion.upstream.upstream import ClientKind, Upstream

pytestmark = pytest.mark.anyio

SERVER = Path(__file__).parent / "servers" / "handshake_server.py"
INFO = {"name": "hostile", "version": "1.0"}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        value = {"k": value}
    return value


# (capabilities, server identity, other result fields)
CASES: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    "plain": ({"tools": {"listChanged": True}, "logging": {}}, INFO, {"instructions": "Be careful."}),
    "deeply nested experimental": ({"experimental": {"x": nested(100)}}, INFO, {}),
    "deeply nested _meta": ({}, INFO, {"_meta": {"trace": nested(100)}}),
    "coercible flags": (
        {"tools": {"listChanged": "true"}, "resources": {"subscribe": 1, "listChanged": "no"}},
        INFO,
        {},
    ),
    "nulls": ({"tools": None, "prompts": {"listChanged": None}}, {**INFO, "title": None}, {"instructions": None}),
    "snake-case keys": ({"tools": {"list_changed": True}}, {"name": "hostile", "version": "1", "website_url": "x"}, {}),
    "extra keys": ({"tools": {"listChanged": True, "x": 1}, "bogus": {}}, {**INFO, "x": [1]}, {"bogus": 1}),
    "icons": ({}, {**INFO, "icons": [{"src": "https://x/i.png", "sizes": ["48x48"]}]}, {}),
    "icon of the wrong type": ({}, {**INFO, "icons": [{"src": 1}]}, {}),
    "capabilities of the wrong type": ([], INFO, {}),
    "identity of the wrong type": ({}, {"name": 1, "version": "1"}, {}),
    "a number for a string": ({}, {"name": "hostile", "version": 2}, {}),
    "experimental not objects": ({"experimental": {"x": [1, 2]}}, INFO, {}),
    "a megabyte of instructions": ({}, INFO, {"instructions": "x" * 1_000_000}),
    "tasks": ({"tasks": {"list": {}, "requests": {"tools": {"call": {}}}}}, INFO, {}),
}


def result_for(era: str, case: str) -> dict[str, Any]:
    capabilities, info, extra = CASES[case]
    if era == "handshake":
        return {"protocolVersion": "2025-11-25", "capabilities": capabilities, "serverInfo": info, **extra}
    meta = {SERVER_INFO_META_KEY: info, **extra.pop("_meta", {})} if "_meta" in extra else {SERVER_INFO_META_KEY: info}
    others = {k: v for k, v in extra.items() if k != "_meta"}
    return {"supportedVersions": ["2026-07-28"], "capabilities": capabilities, "_meta": meta, "ttlMs": 0, **others}


async def _refuse(method: str, params: Any) -> Any:
    raise AssertionError(f"the server asked {method!r}")


async def _ignore(method: str, params: Any) -> None:
    return None


async def opened(tmp_path: Path, era: str, case: str, client: ClientKind) -> tuple[Any, ...]:
    """What the client makes of the server: its era, identity, capabilities and instructions, or a refusal."""
    answer = tmp_path / f"{era}-{client}.json"
    answer.write_text(json.dumps(result_for(era, case)), encoding="utf-8")
    config = StdioServerConfig.model_validate(
        {"command": sys.executable, "args": [str(SERVER), era, str(answer)], "sandbox": {"enabled": False}}
    )
    upstream = Upstream("hostile", config, on_server_request=_refuse, on_notification=_ignore, client=client)
    try:
        with anyio.fail_after(60):
            async with upstream.running():
                info = await upstream.ensure_started()
                tools = await upstream.request("tools/list", None)
    except Exception as exc:  # the session could not be opened
        return ("refused", type(exc).__name__)
    return (info.protocol_version, info.server_info, info.capabilities, info.instructions, tools)


@pytest.mark.parametrize("era", ["handshake", "modern"])
@pytest.mark.parametrize("case", list(CASES))
async def test_bastions_client_reads_a_hostile_handshake_as_the_sdks(tmp_path: Path, era: str, case: str) -> None:
    ours = await opened(tmp_path, era, case, "raw")
    reference = await opened(tmp_path, era, case, "sdk")
    assert ours == reference
    if case == "plain":
        assert ours[0] in ("2025-11-25", "2026-07-28")  # the comparison saw an open session
