from __future__ import annotations

import pytest

from bastion.gateway.http_app import _from_loopback, transport_security


@pytest.mark.parametrize(
    ("client", "loopback"),
    [(("127.0.0.1", 5000), True), (("::1", 5000), True), (("10.1.2.3", 5000), False), (None, False), (("x", 1), False)],
)
def test_only_local_callers_get_readiness_details(client, loopback):
    assert _from_loopback({"client": client}) is loopback


def test_dns_rebinding_protection_is_on_for_a_specific_host_and_accepts_public_url():
    settings = transport_security("127.0.0.1", "https://bastion.example.com")
    assert settings.enable_dns_rebinding_protection
    assert "bastion.example.com" in settings.allowed_hosts
    assert "https://bastion.example.com" in settings.allowed_origins
    assert not transport_security("0.0.0.0", None).enable_dns_rebinding_protection
