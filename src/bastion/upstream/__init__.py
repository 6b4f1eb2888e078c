"""Upstream sessions: Bastion's side of the connection to each MCP server.

`Upstream` (`upstream`) is the one shared session to a server: launched in its sandbox over stdio
(`popen_stdio`), or reached over Streamable HTTP (`http_session` notices a server that forgot the
session), with its health watched (`remote_watch`, for servers Bastion does not launch) and its
state reported (`server_status`). Below it, Bastion's own JSON-RPC client: each message is
serialised once (orjson) and parsed once (`json_codec`); one reader per connection routes
replies to the request waiting on them by Bastion's own request id, server-to-client
requests and notifications to the handlers the gateway gives. The MCP SDK's client stack
stays the reference (`bastion.upstream.upstream_sdk`) and the client of the legacy HTTP+SSE
transport.
"""
