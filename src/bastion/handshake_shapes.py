"""The handshake's shapes read as plain JSON when they are plain: what the SDK's protocol-wide
models (`mcp_types`) make of them, without loading the models.

A `bastion wrap` answers the agent's `initialize` with the upstream's identity and
capabilities, so everything read there is on the way to its first answer, and the models
behind them are a quarter of what a wrap imports. Each reader here takes a value as parsed
from JSON and returns what the model would give (`model_dump(by_alias=True, mode="json",
exclude_none=True)`) when the value has the plain shape real servers and clients send: the
known keys only, by their wire names, with strings and booleans of the exact JSON types and
no nulls. For anything else it returns None, and the caller validates with the model, which
accepts, coerces or refuses as the SDK does: a reader never refuses on its own, and never
accepts what the model would refuse. `tests/unit/test_handshake_shapes.py` holds both facts
as properties, for the SDK installed.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Final

__all__ = [
    "client_initialize_version",
    "discover_result",
    "implementation",
    "initialize_result",
    "server_capabilities",
]

_FLAG: Final = "flag"
"""A `bool | None` field: an exact JSON boolean here."""
_EMPTY: Final = "empty"
"""A capability model without fields: an empty object here."""
_OPEN: Final = "open"
"""A `dict[str, dict[str, Any]]` field (experimental, extensions): objects of JSON values."""

Spec = dict[str, Any]
"""A model's fields by wire name, in its declaration order: a kind above, or a nested Spec."""

SERVER_CAPABILITIES: Final[Spec] = {
    "experimental": _OPEN,
    "logging": _EMPTY,
    "prompts": {"listChanged": _FLAG},
    "resources": {"subscribe": _FLAG, "listChanged": _FLAG},
    "tools": {"listChanged": _FLAG},
    "completions": _EMPTY,
    "extensions": _OPEN,
}
"""`ServerCapabilities` less `tasks` (whose shapes are left to the model)."""

CLIENT_CAPABILITIES: Final[Spec] = {
    "experimental": _OPEN,
    "sampling": {"context": _EMPTY, "tools": _EMPTY},
    "elicitation": {"form": _EMPTY, "url": _EMPTY},
    "roots": {"listChanged": _FLAG},
    "extensions": _OPEN,
}
"""`ClientCapabilities` less `tasks`."""

_IMPLEMENTATION: Final = ("name", "title", "version", "description", "websiteUrl")
"""`Implementation`'s string fields in declaration order (`icons` is left to the model)."""
_IMPLEMENTATION_REQUIRED: Final = frozenset({"name", "version"})


def implementation(raw: object) -> dict[str, str] | None:
    """An `Implementation` (`serverInfo`, `clientInfo`) as the model dumps it, or None."""
    if type(raw) is not dict or not raw.keys() >= _IMPLEMENTATION_REQUIRED or not raw.keys() <= set(_IMPLEMENTATION):
        return None
    out: dict[str, str] = {}
    for key in _IMPLEMENTATION:
        if key in raw:
            value = raw[key]
            if type(value) is not str:
                return None
            out[key] = value
    return out


def server_capabilities(raw: object) -> dict[str, Any] | None:
    """A server's `ServerCapabilities` as the model dumps it, or None."""
    return _object(raw, SERVER_CAPABILITIES)


def initialize_result(raw: object) -> dict[str, Any] | None:
    """An upstream's `InitializeResult` as the model dumps it (`_meta`, `protocolVersion`,
    `capabilities`, `serverInfo`, `instructions`), or None."""
    if type(raw) is not dict or not raw.keys() <= _INITIALIZE_RESULT_KEYS:
        return None
    version, instructions = raw.get("protocolVersion"), raw.get("instructions", "")
    if type(version) is not str or type(instructions) is not str:
        return None
    capabilities = server_capabilities(raw.get("capabilities"))
    info = implementation(raw.get("serverInfo"))
    meta = _meta(raw)
    if capabilities is None or info is None or meta is None:
        return None
    out: dict[str, Any] = meta
    out.update(protocolVersion=version, capabilities=capabilities, serverInfo=info)
    if "instructions" in raw:
        out["instructions"] = instructions
    return out


_INITIALIZE_RESULT_KEYS: Final = frozenset({"_meta", "protocolVersion", "capabilities", "serverInfo", "instructions"})
_DISCOVER_RESULT_KEYS: Final = frozenset(
    {"_meta", "ttlMs", "cacheScope", "supportedVersions", "capabilities", "instructions", "resultType"}
)


def discover_result(raw: object) -> dict[str, Any] | None:
    """An upstream's `DiscoverResult` as the model dumps it (`_meta`, `ttlMs`, `cacheScope`,
    `supportedVersions`, `capabilities`, `instructions`, `resultType`), or None."""
    if type(raw) is not dict or not raw.keys() <= _DISCOVER_RESULT_KEYS:
        return None
    ttl, scope = raw.get("ttlMs", 0), raw.get("cacheScope", "private")
    versions, result_type = raw.get("supportedVersions"), raw.get("resultType", "complete")
    if type(ttl) is not int or ttl < 0 or scope not in ("public", "private") or type(scope) is not str:
        return None
    if type(versions) is not list or any(type(v) is not str for v in versions) or type(result_type) is not str:
        return None
    instructions = raw.get("instructions", "")
    capabilities = server_capabilities(raw.get("capabilities"))
    meta = _meta(raw)
    if type(instructions) is not str or capabilities is None or meta is None:
        return None
    out: dict[str, Any] = meta
    out.update(ttlMs=ttl, cacheScope=scope, supportedVersions=list(versions), capabilities=capabilities)
    if "instructions" in raw:
        out["instructions"] = instructions
    out["resultType"] = result_type
    return out


def client_initialize_version(raw: object) -> str | None:
    """The `protocolVersion` of an agent's `initialize` params that `InitializeRequestParams`
    accepts as they are; None when the model must decide (it may refuse them)."""
    if type(raw) is not dict or not raw.keys() <= _INITIALIZE_PARAMS_KEYS:
        return None
    version = raw.get("protocolVersion")
    if type(version) is not str or implementation(raw.get("clientInfo")) is None:
        return None
    return version if _object(raw.get("capabilities"), CLIENT_CAPABILITIES) is not None else None


_INITIALIZE_PARAMS_KEYS: Final = frozenset({"protocolVersion", "capabilities", "clientInfo"})
"""`_meta` (a typed dict with a progress token) is left to the model."""


def _meta(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The start of a result's dump: `{"_meta": ...}` (a `dict[str, Any]`) when it has one, else
    empty; None when its `_meta` is not plain."""
    if "_meta" not in raw:
        return {}
    meta = raw["_meta"]
    return {"_meta": copy.deepcopy(meta)} if type(meta) is dict and _json(meta) else None


def _object(raw: object, spec: Spec) -> dict[str, Any] | None:
    if type(raw) is not dict or not raw.keys() <= spec.keys():
        return None
    out: dict[str, Any] = {}
    for key, kind in spec.items():
        if key not in raw:
            continue
        value = raw[key]
        if kind is _FLAG:
            if type(value) is not bool:
                return None
            out[key] = value
        elif kind is _EMPTY:
            if type(value) is not dict or value:
                return None
            out[key] = {}
        elif kind is _OPEN:
            if type(value) is not dict or any(type(v) is not dict for v in value.values()) or not _json(value):
                return None
            out[key] = copy.deepcopy(value)
        else:
            nested = _object(value, kind)
            if nested is None:
                return None
            out[key] = nested
    return out


MAX_DEPTH: Final = 64
"""Nesting past which a value is left to the model (a hostile server's, or a deep `_meta`)."""


def _json(value: object, depth: int = 0) -> bool:
    """Whether `value` is made of JSON's exact types (finite numbers), as a JSON parser gives
    them, nested at most `MAX_DEPTH` deep."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return True
    if kind is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    if depth >= MAX_DEPTH:
        return False
    if kind is list:
        return all(_json(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    if kind is dict:
        return all(type(k) is str and _json(v, depth + 1) for k, v in value.items())  # type: ignore[attr-defined]
    return False
