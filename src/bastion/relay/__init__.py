"""Bastion's own JSON-RPC relay: the hot path between an agent and one upstream server.

Each message is parsed once (`jsonrpc`), carried through the request as a `Flow`
(`flow`), recorded by the audit hook before anything else happens to it, judged by the
guard pipeline and forwarded on the shared upstream session; replies are serialized once.
Sessions (`session`) give the agent a channel back (progress, server-to-client requests,
notifications). `http_front` is the Streamable HTTP front door that feeds it, `sse_front` the
legacy HTTP+SSE one, `stdio_front` the stdio one; `aggregate` serves `/mcp` and virtual servers.

The SDK's server stack stays the reference: `relay_enabled()` says which one serves.
"""

from __future__ import annotations

import os

RELAY_ENV = "BASTION_RELAY"
"""`0` serves the HTTP endpoints (`/servers/<name>/...`, `/mcp`, `/sse`) and `bastion wrap` through
the SDK's server stack (the reference); anything else (and unset, the default) through the relay."""


def relay_enabled() -> bool:
    """Whether the relay serves the HTTP endpoints and `bastion wrap` (hidden switch, `BASTION_RELAY`)."""
    return os.environ.get(RELAY_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
