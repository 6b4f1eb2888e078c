"""The MCP servers an agent talks to: `ProxyServer` per upstream, `AggregateServer` for `/mcp` and
virtual servers, the call recorder (audit), and routing of server messages back to agents."""
