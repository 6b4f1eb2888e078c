"""Which destinations a sandboxed server may reach: the domain allowlist and address rules.

Names match exactly, or `*.example.com` matches any name under example.com (not
example.com itself). An IP literal is refused unless that exact address is listed. After
the proxy resolves a name, every address it would connect to must be public: private,
loopback, link-local (including cloud metadata such as 169.254.169.254 and fd00:ec2::254),
multicast and reserved addresses are refused unless listed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EgressPolicy"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """A server's allowlist. `host_refusal` and `address_refusal` return why not, or None."""

    exact: frozenset[str]
    wildcards: tuple[str, ...]
    addresses: frozenset[IPAddress]

    @classmethod
    def from_domains(cls, domains: Iterable[str]) -> EgressPolicy:
        exact: set[str] = set()
        wildcards: list[str] = []
        addresses: set[IPAddress] = set()
        for domain in domains:
            name = domain.strip().lower().rstrip(".")
            if (ip := _ip(name)) is not None:
                addresses.add(ip)
            elif name.startswith("*."):
                wildcards.append(name[1:])
            else:
                exact.add(name)
        return cls(frozenset(exact), tuple(wildcards), frozenset(addresses))

    def host_refusal(self, host: str) -> str | None:
        """Why `host` (a name or IP literal, as the client asked) is refused, or None."""
        name = host.strip().lower().rstrip(".")
        if not name:
            return "empty host"
        ip = _ip(name)
        if ip is not None:
            return None if ip in self.addresses else f"IP literal {ip} is not on the allowlist"
        if name in self.exact or any(name.endswith(suffix) for suffix in self.wildcards):
            return None
        return f"{name} is not on the allowlist"

    def address_refusal(self, address: str) -> str | None:
        """Why connecting to a resolved `address` is refused, or None."""
        ip = _ip(address)
        if ip is None:
            return f"{address} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip in self.addresses:
            return None
        if ip in METADATA_ADDRESSES:
            return f"{ip} is a cloud metadata address"
        if ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_multicast or ip.is_reserved:
            return f"{ip} is a private, loopback, link-local or reserved address"
        if ip.is_unspecified or not ip.is_global:
            return f"{ip} is not a public address"
        return None
