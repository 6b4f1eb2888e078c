"""A request as a front door hands it to the call recorder, for the recorder's tests."""

from __future__ import annotations

from bastion.model import Principal
from bastion.proxy.recording import RecordedRequest, Target


def echo_request(method: str = "tools/call") -> RecordedRequest:
    """`method` (a call of tool `echo` on server `s` by `agent`, over stdio)."""
    return RecordedRequest(
        principal=Principal("agent"),
        method=method,
        params={"name": "echo", "arguments": {}},
        target=Target("s", "echo"),
        agent=None,
        transport="stdio",
        endpoint=None,
    )
