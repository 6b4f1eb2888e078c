"""`trusted_proxies`: checked at config load, and turned into uvicorn's forwarded-header options.

The behaviour over real HTTP is in tests/security/test_forwarded_headers.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bastion.config import load_config
from bastion.config_errors import ConfigError
from bastion.front.proxy_trust import uvicorn_proxy_options


def load_trusted(tmp_path: Path, value: str) -> list[str]:
    path = tmp_path / "bastion.yaml"
    path.write_text(f"trusted_proxies: {value}\n", encoding="utf-8")
    return load_config(path, environ={}).trusted_proxies


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[]", []),
        ("null", []),
        ("[127.0.0.1]", ["127.0.0.1"]),
        ('[" 10.0.0.0/8 ", "::1", "fd00::/8"]', ["10.0.0.0/8", "::1", "fd00::/8"]),
        ('["0:0:0:0:0:0:0:1"]', ["::1"]),
    ],
)
def test_addresses_and_networks_are_accepted_and_normalized(tmp_path: Path, value: str, expected: list[str]) -> None:
    assert load_trusted(tmp_path, value) == expected


def test_the_default_trusts_nobody(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text("servers: {}\n", encoding="utf-8")
    assert load_config(path, environ={}).trusted_proxies == []


# (yaml value, key the error names, fragments of the message)
BAD = [
    ('["*"]', "trusted_proxies[0]", ["every client", "0.0.0.0/0"]),
    ("[proxy.internal]", "trusted_proxies[0]", ["`proxy.internal`", "not resolved"]),
    ("[127.0.0.1, 10.0.0.1/8]", "trusted_proxies[1]", ["host bits", "10.0.0.0/8"]),
    ("[10.0.0.0/33]", "trusted_proxies[0]", ["not an IP address or CIDR network"]),
    ("[8080]", "trusted_proxies[0]", ["must be an IP address"]),
    ('[""]', "trusted_proxies[0]", ["must be an IP address"]),
    ("127.0.0.1", "trusted_proxies", ["must be a list"]),
]


@pytest.mark.parametrize(("value", "key", "fragments"), BAD, ids=[v for v, _, _ in BAD])
def test_a_bad_entry_is_a_config_error_naming_it(tmp_path: Path, value: str, key: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_trusted(tmp_path, value)
    assert info.value.key == key
    assert info.value.line == 1
    for fragment in fragments:
        assert fragment in str(info.value)


def test_no_trusted_proxy_turns_forwarded_headers_off_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    config = uvicorn.Config(lambda: None, **uvicorn_proxy_options([]))
    assert config.proxy_headers is False


def test_trusted_proxies_replace_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    config = uvicorn.Config(lambda: None, **uvicorn_proxy_options(["10.0.0.0/8"]))
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == ["10.0.0.0/8", "::ffff:10.0.0.0/104"]


@pytest.mark.parametrize(
    ("peer", "believed"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),
        ("::ffff:192.0.2.1", True),
        ("::1", True),
        ("11.0.0.1", False),
        ("::ffff:11.0.0.1", False),
        ("192.0.2.2", False),
        ("::2", False),
    ],
)
def test_an_ipv4_proxy_is_recognised_on_a_dual_stack_listener_too(peer: str, believed: bool) -> None:
    options = uvicorn_proxy_options(["10.0.0.0/8", "192.0.2.1", "::1"])
    trusted = ProxyHeadersMiddleware(lambda: None, options["forwarded_allow_ips"]).trusted_hosts  # type: ignore[arg-type]
    assert (peer in trusted) is believed


def test_nothing_in_bastion_reads_forwarded_headers_itself() -> None:
    # Only uvicorn's middleware, configured by `trusted_proxies`, may believe them.
    source = Path(__file__).parents[3] / "src" / "bastion"
    readers = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if re.search(r"""b?["'](x-forwarded|forwarded["'])""", path.read_text(encoding="utf-8"), re.IGNORECASE)
    ]
    assert readers == []
