"""`trusted_proxies`: the peers whose forwarded headers are believed (see front/proxy_trust.py)."""

from __future__ import annotations

import ipaddress
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
