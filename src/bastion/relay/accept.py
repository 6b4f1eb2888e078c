"""The `Accept` header rules of Streamable HTTP (as the SDK's `check_accept_headers`)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=64)  # an agent sends the same header on every request
def accepts(accept: str) -> tuple[bool, bool]:
    """(JSON, SSE) accepted, with RFC 7231 wildcards (as the SDK's `check_accept_headers`)."""
    types = [part.strip().split(";")[0].strip().lower() for part in accept.split(",")]
    wildcard = "*/*" in types
    has_json = wildcard or any(t in ("application/json", "application/*") for t in types)
    has_sse = wildcard or any(t in ("text/event-stream", "text/*") for t in types)
    return has_json, has_sse
