"""The egress proxy: the only way out of a sandbox with `network: allowlist`."""
