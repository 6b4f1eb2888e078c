"""Request headers read straight from an ASGI scope, as Starlette's `Headers.get` reads them.

The front door reads a few headers of every request (the credential, the session, the
protocol version, Accept, Content-Type, Host, Origin). Building a Starlette `Headers` for each
costs more than the lookups (about 30 µs against 12 after an idle spell, on every request,
before its write-ahead record can start). These give the same answer: the first value of a
header, latin-1 decoded (ASGI servers give header names in lower case), None when absent.
"""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def headers_named(scope: Scope, names: frozenset[bytes]) -> dict[bytes, str]:
    """The first value of each header in `names` (lower case) that the request has."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in names and key not in found:
            found[key] = value.decode("latin-1")
    return found
