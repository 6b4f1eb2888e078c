"""The egress allowlist: names exact or `*.` wildcard; IP literals and non-public addresses refused unless listed."""

from __future__ import annotations

import pytest

from bastion.runtime.egress.policy import EgressPolicy

POLICY = EgressPolicy.from_domains(["api.example.com", "*.cdn.example.net", "Registry.NPMjs.org.", "203.0.113.80"])


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example.com", True),
        ("API.Example.com.", True),
        ("registry.npmjs.org", True),
        ("example.com", False),
        ("evil-api.example.com", False),
        ("api.example.com.evil.test", False),
        ("img.cdn.example.net", True),
        ("a.b.cdn.example.net", True),
        ("cdn.example.net", False),
        ("evilcdn.example.net", False),
        ("203.0.113.80", True),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("[::1]", False),
        ("", False),
    ],
)
def test_host_allowlist(host: str, allowed: bool) -> None:
    assert (POLICY.host_refusal(host) is None) is allowed


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),
        ("::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("100.64.0.1", False),
        ("203.0.113.80", True),
        ("203.0.113.81", False),
        ("not-an-ip", False),
    ],
)
def test_address_rules(address: str, allowed: bool) -> None:
    assert (POLICY.address_refusal(address) is None) is allowed


def test_metadata_is_named_in_the_refusal() -> None:
    assert "metadata" in (POLICY.address_refusal("169.254.169.254") or "")
    assert "metadata" in (POLICY.address_refusal("fd00:ec2::254") or "")


def test_a_listed_metadata_address_is_allowed() -> None:
    assert EgressPolicy.from_domains(["169.254.169.254"]).address_refusal("169.254.169.254") is None
