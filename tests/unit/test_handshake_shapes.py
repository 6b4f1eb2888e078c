"""The handshake read without the SDK's models reads as the models do (`bastion.handshake_shapes`).

A `bastion wrap` answers the agent's `initialize` without loading the protocol-wide models when
the values are plain. For each reader, over values near the shapes and off them one field at a
time (other JSON types, coercible strings and numbers, extra and snake-case keys, nulls, str and
dict subclasses, NaN), these properties hold for the SDK installed:

- whatever a reader accepts, the model accepts too, and dumps the same, key for key and in order
  (the JSON text is equal);
- a reader never refuses on its own: on anything else it answers None, and the caller asks the model;
- plain values as real servers and clients send them are read without the models.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp_types as types
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp_types import SERVER_INFO_META_KEY
from pydantic import BaseModel, ValidationError

from bastion import handshake_shapes as shapes
from tests.unit.handshake_values import (
    IMPLEMENTATION,
    META,
    ODD,
    REQUEST,
    SERVER_CAPABILITIES,
    TEXT,
    UPSTREAM_RESULT,
)


class _Str(str):
    pass


class _Dict(dict[str, Any]):
    pass


_HOSTILE: st.SearchStrategy[Any] = st.sampled_from(
    [None, 0, 1, 2, -1, 1.5, 5.0, float("nan"), float("inf"), True, "true", "1", "x", _Str("x"), [], {}, _Dict(),
     {"list_changed": True}]
)  # fmt: skip


def _off(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid`, or one time in 8 a hostile value."""
    return st.integers(0, 7).flatmap(lambda pick: _HOSTILE if pick == 0 else valid)


def _often_off(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid`, or one time in 6 a hostile value: nested values off their shape, in values
    otherwise plain (the shared strategies put most of their odd values in extra keys)."""
    return st.integers(0, 5).flatmap(lambda pick: _HOSTILE if pick == 0 else valid)


_FLAGS = st.fixed_dictionaries(
    {}, optional={"listChanged": _often_off(st.booleans()), "subscribe": _often_off(st.booleans())}
)
_EMPTY = _often_off(st.just({}))
_OPEN_VALUE = _often_off(st.dictionaries(TEXT, _often_off(st.just({"on": True, "n": [1, None, "x"]})), max_size=2))
_NEAR_SERVER_CAPABILITIES = st.fixed_dictionaries(
    {},
    optional={
        "experimental": _OPEN_VALUE,
        "logging": _EMPTY,
        "prompts": _often_off(_FLAGS),
        "resources": _often_off(_FLAGS),
        "tools": _often_off(_FLAGS),
        "completions": _EMPTY,
        "extensions": _OPEN_VALUE,
    },
)
_NEAR_CLIENT_CAPABILITIES = st.fixed_dictionaries(
    {},
    optional={
        "experimental": _OPEN_VALUE,
        "sampling": _often_off(st.fixed_dictionaries({}, optional={"context": _EMPTY, "tools": _EMPTY})),
        "elicitation": _often_off(st.fixed_dictionaries({}, optional={"form": _EMPTY, "url": _EMPTY})),
        "roots": _often_off(_FLAGS),
        "extensions": _OPEN_VALUE,
    },
)
_NEAR_IMPLEMENTATION = st.fixed_dictionaries(
    {"name": _often_off(TEXT), "version": _often_off(TEXT)},
    optional={"title": _often_off(TEXT), "description": _often_off(TEXT), "websiteUrl": _often_off(TEXT)},
)
_CAPABILITY_PARTS = st.one_of(_NEAR_SERVER_CAPABILITIES, SERVER_CAPABILITIES, _NEAR_CLIENT_CAPABILITIES, _HOSTILE)
_IMPLEMENTATIONS = st.one_of(_NEAR_IMPLEMENTATION, IMPLEMENTATION)
_NEAR_INITIALIZE_RESULT = st.fixed_dictionaries(
    {
        "protocolVersion": _often_off(st.sampled_from(["2025-06-18", "x"])),
        "capabilities": _NEAR_SERVER_CAPABILITIES,
        "serverInfo": _NEAR_IMPLEMENTATION,
    },
    optional={"instructions": _often_off(TEXT), "_meta": _often_off(META)},
)
_NEAR_REQUEST = st.fixed_dictionaries(
    {
        "protocolVersion": _often_off(st.sampled_from(["2025-06-18", "x"])),
        "capabilities": _NEAR_CLIENT_CAPABILITIES,
        "clientInfo": _NEAR_IMPLEMENTATION,
    },
)

_STAMPED_META = st.one_of(
    META, st.fixed_dictionaries({SERVER_INFO_META_KEY: _off(_IMPLEMENTATIONS)}, optional={"io.x/k": ODD})
)
DISCOVER_RESULT = st.fixed_dictionaries(
    {
        "supportedVersions": _off(st.lists(_off(st.sampled_from(["2026-07-28", "2025-11-25", "x"])), max_size=3)),
        "capabilities": _off(st.one_of(_NEAR_SERVER_CAPABILITIES, SERVER_CAPABILITIES)),
    },
    optional={
        "instructions": _off(TEXT),
        "_meta": _often_off(_STAMPED_META),
        "ttlMs": _often_off(st.integers(-2, 5)),
        "cacheScope": _often_off(st.sampled_from(["public", "private", "shared"])),
        "resultType": _often_off(st.sampled_from(["complete", "input_required", "x"])),
    },
)
DISCOVER_RESULTS = st.one_of(
    DISCOVER_RESULT,
    st.tuples(DISCOVER_RESULT, st.sampled_from(["other", "supported_versions", "ttl_ms"]), ODD).map(
        lambda extra: {**extra[0], extra[1]: extra[2]}
    ),
)

_RUNS = settings(max_examples=700, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _dump(model: BaseModel) -> str:
    return json.dumps(model.model_dump(by_alias=True, mode="json", exclude_none=True))


def _model(validate: Callable[[], BaseModel]) -> BaseModel | None:
    try:
        return validate()
    except ValidationError:
        return None


def _agrees(read: Any, validate: Callable[[], BaseModel]) -> None:
    """What a reader gave (`read`, None: ask the model) is what the model gives."""
    if read is None:
        return
    model = _model(validate)
    assert model is not None, f"read {read!r}, which the model refuses"
    assert json.dumps(read) == _dump(model)


@_RUNS
@given(_off(_IMPLEMENTATIONS))
@example({"name": _Str("a"), "version": "1"})
@example({"name": "a", "version": 1})
@example({"name": "a", "version": "1", "title": None})
@example({"name": "a", "version": "1", "website_url": "https://x"})
@example(_Dict(name="a", version="1"))
def test_an_implementation_read_plain_is_the_models(raw: Any) -> None:
    _agrees(shapes.implementation(raw), lambda: types.Implementation.model_validate(raw))


@_RUNS
@given(_off(_CAPABILITY_PARTS))
@example({"tools": {"listChanged": 1}})
@example({"tools": {"listChanged": "true"}})
@example({"tools": {"listChanged": None}})
@example({"tools": {"list_changed": True}})
@example({"resources": {"subscribe": 0, "listChanged": True}})
@example({"logging": {"level": "debug"}})
@example({"logging": None})
@example({"experimental": {"x": {"n": float("nan")}}})
@example({"experimental": {"x": []}})
@example({"experimental": {"x": _Dict()}})
@example({"tasks": {}})
def test_server_capabilities_read_plain_are_the_models(raw: Any) -> None:
    _agrees(shapes.server_capabilities(raw), lambda: types.ServerCapabilities.model_validate(raw))


@_RUNS
@given(_off(st.one_of(_NEAR_INITIALIZE_RESULT, UPSTREAM_RESULT)))
def test_an_initialize_result_read_plain_is_the_models(raw: Any) -> None:
    read = shapes.initialize_result(raw)
    _agrees(read, lambda: types.InitializeResult.model_validate(raw, by_name=False))
    _agrees(read, lambda: types.InitializeResult.model_validate(raw))


@_RUNS
@given(_off(DISCOVER_RESULTS))
@example({"supportedVersions": ["2026-07-28"], "capabilities": {}, "ttlMs": True})
@example({"supportedVersions": ["2026-07-28"], "capabilities": {}, "ttlMs": 5.0})
@example({"supportedVersions": ["2026-07-28"], "capabilities": {}, "ttlMs": -1})
@example({"supportedVersions": ["2026-07-28"], "capabilities": {}, "cacheScope": _Str("public")})
@example({"supportedVersions": ("2026-07-28",), "capabilities": {}})
@example({"supportedVersions": ["2026-07-28"], "capabilities": {}, "_meta": {"k": float("inf")}})
@example({"supportedVersions": ["2026-07-28"], "capabilities": {}, "resultType": None})
def test_a_discover_result_read_plain_is_the_models(raw: Any) -> None:
    _agrees(shapes.discover_result(raw), lambda: types.DiscoverResult.model_validate(raw))


@_RUNS
@given(_off(st.one_of(_NEAR_REQUEST, REQUEST)))
@example({"protocolVersion": 2025, "capabilities": {}, "clientInfo": {"name": "a", "version": "1"}})
@example(
    {"protocolVersion": "x", "capabilities": {"roots": {"listChanged": 1}}, "clientInfo": {"name": "a", "version": "1"}}
)
@example(
    {"protocolVersion": "x", "capabilities": {"sampling": {"context": 1}}, "clientInfo": {"name": "a", "version": "1"}}
)
@example(
    {
        "protocolVersion": "x",
        "capabilities": {},
        "clientInfo": {"name": "a", "version": "1"},
        "_meta": {"progressToken": []},
    }
)
@example({"protocol_version": "x", "capabilities": {}, "clientInfo": {"name": "a", "version": "1"}})
def test_an_initialize_request_read_plain_is_one_the_model_accepts(raw: Any) -> None:
    version = shapes.client_initialize_version(raw)
    if version is not None:
        model = _model(lambda: types.InitializeRequestParams.model_validate(raw, by_name=False))
        assert model is not None, f"read {raw!r}, which the model refuses"
        assert isinstance(model, types.InitializeRequestParams)
        assert model.protocol_version == version


_READERS: dict[str, tuple[Callable[[Any], Any], st.SearchStrategy[Any], Callable[[Any], BaseModel]]] = {
    "implementation": (shapes.implementation, _off(_IMPLEMENTATIONS), types.Implementation.model_validate),
    "server_capabilities": (
        shapes.server_capabilities,
        _off(_CAPABILITY_PARTS),
        types.ServerCapabilities.model_validate,
    ),
    "initialize_result": (
        shapes.initialize_result,
        _off(st.one_of(_NEAR_INITIALIZE_RESULT, UPSTREAM_RESULT)),
        lambda raw: types.InitializeResult.model_validate(raw, by_name=False),
    ),
    "discover_result": (shapes.discover_result, _off(DISCOVER_RESULTS), types.DiscoverResult.model_validate),
    "client_initialize_version": (
        shapes.client_initialize_version,
        _off(st.one_of(_NEAR_REQUEST, REQUEST)),
        lambda raw: types.InitializeRequestParams.model_validate(raw, by_name=False),
    ),
}


@pytest.mark.parametrize("name", list(_READERS))
def test_the_properties_saw_every_side(name: str) -> None:
    """The strategies reach, for each reader, values it reads, values it leaves to the model that
    the model accepts, and values the model refuses (else the properties above prove little)."""
    reader, values, validate = _READERS[name]
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(values)
    def look(raw: Any) -> None:
        if reader(raw) is not None:
            seen.add("read")
        elif _model(lambda: validate(raw)) is not None:
            seen.add("left to the model, accepted")
        else:
            seen.add("refused")

    look()
    assert seen == {"read", "left to the model, accepted", "refused"}


_EVERYTHING_CAPABILITIES = {
    "prompts": {},
    "resources": {"subscribe": True},
    "tools": {},
    "logging": {},
    "completions": {},
}
PLAIN = [
    (shapes.server_capabilities, _EVERYTHING_CAPABILITIES),
    (shapes.server_capabilities, {"experimental": {}, "tools": {"listChanged": True}}),
    (
        shapes.initialize_result,
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "mcp-time", "version": "1.9.4"},
            "instructions": "Tell the time.",
        },
    ),
    (
        shapes.discover_result,
        {
            "supportedVersions": ["2026-07-28"],
            "capabilities": _EVERYTHING_CAPABILITIES,
            "ttlMs": 0,
            "cacheScope": "private",
            "resultType": "complete",
            "_meta": {SERVER_INFO_META_KEY: {"name": "everything", "title": "Everything", "version": "2.0.0"}},
        },
    ),
    (
        shapes.client_initialize_version,
        {
            "protocolVersion": "2025-11-25",
            "capabilities": {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {"form": {}, "url": {}}},
            "clientInfo": {"name": "claude-code", "version": "2.1.0"},
        },
    ),
    (
        shapes.client_initialize_version,
        {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}},
    ),
]


@pytest.mark.parametrize(("reader", "raw"), PLAIN)
def test_what_real_servers_and_clients_send_is_read_without_the_models(reader: Callable[[Any], Any], raw: Any) -> None:
    assert reader(raw) is not None


def test_a_value_nested_deeper_than_the_readers_go_is_left_to_the_model() -> None:
    deep: dict[str, Any] = {"leaf": True}
    for _ in range(shapes.MAX_DEPTH + 5):
        deep = {"k": deep}
    assert shapes.server_capabilities({"experimental": {"x": deep}}) is None
    assert (
        shapes.initialize_result(
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "serverInfo": {"name": "a", "version": "1"},
                "_meta": deep,
            }
        )
        is None
    )
    shallow = {"experimental": {"x": {"k": {"leaf": True}}}}
    assert shapes.server_capabilities(shallow) == shallow
