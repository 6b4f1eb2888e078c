"""What an event is about, in one word for a table: its tool, or for a request that names none, its method."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CALL_TYPE_PREFIX = "call."


def subject(event_type: str, details: Mapping[str, Any]) -> str | None:
    """`read_query` for a tool call; `initialize`, `tools/list`, ... for the other requests; else None.

    Only call events name a JSON-RPC method: an egress event's `method` is an HTTP verb and
    is not what the event is about.
    """
    tool = details.get("tool")
    if isinstance(tool, str) and tool:
        return tool
    method = details.get("method")
    if event_type.startswith(CALL_TYPE_PREFIX) and isinstance(method, str) and method:
        return method
    return None
