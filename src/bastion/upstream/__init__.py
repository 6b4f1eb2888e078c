"""Bastion's own client side of an upstream MCP session: JSON-RPC over stdio and Streamable HTTP.

Each message is serialised once (orjson) and parsed once (`json_codec`); one reader per connection routes
replies to the request waiting on them by Bastion's own request id, server-to-client
requests and notifications to the handlers the gateway gives. The MCP SDK's client stack
stays the reference (`bastion.upstream.upstream_sdk`) and the client of the legacy HTTP+SSE
transport.
"""
