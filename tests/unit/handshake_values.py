"""JSON values near the handshake's shapes, and off them one field at a time, for property tests:
the agent's `initialize` params, an upstream's `InitializeResult`, their parts."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

ODD = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.just(1.5), st.just([]), st.just({}), st.just("x"))


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid`, or one time in 25 a value of another JSON type (so both sides of each check are seen)."""
    return st.integers(0, 24).flatmap(lambda pick: ODD if pick == 0 else valid)


TEXT = st.text(max_size=3)
URL = st.sampled_from(["https://x/i.png", "http://x", "data:image/png;base64,AA==", "x", "", "ftp://x"])
ICON = st.fixed_dictionaries(
    {"src": mostly(URL)},
    optional={
        "mimeType": mostly(TEXT),
        "sizes": mostly(st.lists(mostly(st.sampled_from(["48x48", "any", "x"])), max_size=2)),
        "theme": mostly(st.sampled_from(["light", "dark", "x"])),
        "extra": ODD,
    },
)
IMPLEMENTATION = st.fixed_dictionaries(
    {"name": mostly(TEXT), "version": mostly(TEXT)},
    optional={
        "title": mostly(TEXT),
        "description": mostly(TEXT),
        "websiteUrl": mostly(URL),
        "icons": mostly(st.lists(mostly(ICON), max_size=2)),
        "extra": ODD,
    },
)
FLAG = mostly(st.booleans())
PART = st.fixed_dictionaries(
    {},
    optional={
        "listChanged": FLAG,
        "subscribe": FLAG,
        "context": mostly(st.just({})),
        "tools": mostly(st.just({})),
        "form": mostly(st.fixed_dictionaries({}, optional={"applyDefaults": FLAG})),
        "url": mostly(st.just({})),
        "x": ODD,
    },
)
OPEN = st.dictionaries(TEXT, mostly(st.dictionaries(TEXT, ODD, max_size=2)), max_size=2)
META = st.fixed_dictionaries({}, optional={"progressToken": mostly(TEXT | st.integers()), "io.x/k": ODD})
CLIENT_CAPABILITIES = st.fixed_dictionaries(
    {},
    optional={
        name: mostly(OPEN if name in ("experimental", "extensions", "tasks") else PART)
        for name in ("experimental", "sampling", "elicitation", "roots", "extensions", "tasks")
    }
    | {"other": ODD},
)
SERVER_CAPABILITIES = st.fixed_dictionaries(
    {},
    optional={
        name: mostly(OPEN if name in ("experimental", "logging", "completions", "extensions", "tasks") else PART)
        for name in ("experimental", "logging", "completions", "prompts", "resources", "tools", "extensions", "tasks")
    }
    | {"other": ODD},
)
VERSION = st.sampled_from([*HANDSHAKE_PROTOCOL_VERSIONS, "1999-01-01"])
REQUEST = st.one_of(
    st.fixed_dictionaries(
        {
            "protocolVersion": mostly(VERSION),
            "capabilities": mostly(CLIENT_CAPABILITIES),
            "clientInfo": mostly(IMPLEMENTATION),
        },
        optional={"_meta": mostly(META), "other": ODD},
    ),
    ODD,
)
UPSTREAM_RESULT = st.fixed_dictionaries(
    {
        "protocolVersion": mostly(VERSION),
        "capabilities": mostly(SERVER_CAPABILITIES),
        "serverInfo": mostly(IMPLEMENTATION),
    },
    optional={"instructions": mostly(TEXT), "_meta": mostly(META), "other": ODD},
)
