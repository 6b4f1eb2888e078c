"""Which peers may tell Bastion the client's address and scheme (`trusted_proxies`).

A request's `X-Forwarded-For` and `X-Forwarded-Proto` are only words the peer wrote. Bastion
records the client address in audit events (`auth.failure`, `request.refused`, failed dashboard
sign-ins) and the dashboard decides `Secure` cookies and same-origin checks by the scheme, so a
peer that may set them can forge both. By default no peer may: uvicorn runs with
`proxy_headers=False` and the headers are ignored. With `trusted_proxies` set, uvicorn's
`ProxyHeadersMiddleware` honours them only on connections from those addresses, and takes the
right-most `X-Forwarded-For` entry that is not itself a trusted proxy. The list is passed to
uvicorn explicitly, so the `FORWARDED_ALLOW_IPS` environment variable never widens it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any


def uvicorn_proxy_options(trusted_proxies: Sequence[str]) -> dict[str, Any]:
    """The `uvicorn.Config` keywords: forwarded headers off, or honoured from these peers only."""
    if not trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": [*trusted_proxies, *_ipv4_mapped(trusted_proxies)]}


def _ipv4_mapped(trusted_proxies: Sequence[str]) -> list[str]:
    """The IPv4 entries as a dual-stack `[::]` listener sees IPv4 peers (`::ffff:a.b.c.d`)."""
    mapped = []
    for entry in trusted_proxies:
        network = ipaddress.ip_network(entry)
        if isinstance(network, ipaddress.IPv4Network):
            mapped.append(f"::ffff:{network.network_address}/{96 + network.prefixlen}")
    return mapped
