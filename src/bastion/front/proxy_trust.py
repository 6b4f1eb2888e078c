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

from bastion.config_errors import config_problem

_FIX = "list proxy addresses or networks, e.g. [127.0.0.1, 10.0.0.0/8, ::1]"


def check_trusted_proxies(value: Any) -> list[str]:
    """The `trusted_proxies` list, each entry an IP address or CIDR network, normalized."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise config_problem("must be a list of IP addresses or CIDR networks", _FIX)
    return [_one(entry, index) for index, entry in enumerate(value)]


def _one(entry: Any, index: int) -> str:
    if not isinstance(entry, str) or not entry.strip():
        raise config_problem("must be an IP address or CIDR network (text)", _FIX, "trusted_proxies", index)
    text = entry.strip()
    if text == "*":
        raise config_problem(
            "`*` would let every client forge its address and scheme",
            "list the proxies' addresses or networks (0.0.0.0/0 and ::/0 if you really mean everyone)",
            "trusted_proxies",
            index,
        )
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=True))
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            pass
        else:
            fix = f"write the network address, {network}, or a single address without /"
            raise config_problem(f"`{text}` has host bits set", fix, "trusted_proxies", index) from None
    raise config_problem(
        f"`{text}` is not an IP address or CIDR network (host names are not resolved)", _FIX, "trusted_proxies", index
    )


def uvicorn_proxy_options(trusted_proxies: Sequence[str]) -> dict[str, Any]:
    """The `uvicorn.Config` keywords: forwarded headers off, or honoured from these peers only."""
    if not trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted_proxies)}
