from __future__ import annotations

from bastion.front.http_app import transport_security

# `/readyz` details no longer go to any caller on this host (issue 13, item 3): who gets them
# is in tests/security/test_auth_matrix.py.


def test_dns_rebinding_protection_is_on_for_a_specific_host_and_accepts_public_url():
    settings = transport_security("127.0.0.1", "https://bastion.example.com")
    assert settings.enabled
    assert "bastion.example.com" in settings.allowed_hosts
    assert "https://bastion.example.com" in settings.allowed_origins
    assert not transport_security("0.0.0.0", None).enabled
