"""`asgi_headers`: the front door's header reads give what Starlette's `Headers.get` gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from bastion.relay.asgi_headers import header, headers_named

NAMES = [b"authorization", b"mcp-session-id", b"mcp-protocol-version", b"accept", b"content-type", b"host", b"origin"]
names = st.sampled_from([*NAMES, b"x-other", b"cookie"])
values = st.binary(max_size=40).filter(lambda v: b"\r" not in v and b"\n" not in v)
raw_headers = st.lists(st.tuples(names, values), max_size=8)


@given(raw_headers)
def test_each_header_is_read_as_starlette_reads_it(raw: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "headers": raw}
    starlette = Headers(scope=scope)
    wanted = frozenset(NAMES)
    named = headers_named(scope, wanted)
    for name in NAMES:
        assert header(scope, name) == starlette.get(name.decode())
        assert named.get(name) == starlette.get(name.decode())
    assert set(named) <= wanted


def test_a_repeated_header_gives_its_first_value_everywhere() -> None:
    """One value per request for the session id and the credential, whoever reads it: a second
    `Mcp-Session-Id` must not make the duplicate-id check and the session lookup see two sessions."""
    scope = {"headers": [(b"mcp-session-id", b"first"), (b"mcp-session-id", b"second")]}
    assert header(scope, b"mcp-session-id") == "first"
    assert headers_named(scope, frozenset({b"mcp-session-id"})) == {b"mcp-session-id": "first"}
    assert header(scope, b"authorization") is None
