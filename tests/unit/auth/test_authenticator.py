from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from bastion.auth.authenticator import Authenticator, bearer_token
from bastion.auth.jwt_auth import JwtSettings, JwtVerifier
from bastion.auth.sqlite_tokens import SqliteTokenStore as TokenStore

SECRET = "k" * 32
pytestmark = pytest.mark.anyio


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TokenStore]:
    s = TokenStore(tmp_path / "tokens.db")
    yield s
    s.close()


@pytest.fixture
def verifier() -> JwtVerifier:
    return JwtVerifier(JwtSettings(issuer="idp", audience="bastion", secret=SECRET, algorithms=("HS256",)))


def make_jwt(sub: str = "cursor", **extra: Any) -> str:
    now = int(time.time())
    payload = {"iss": "idp", "aud": "bastion", "sub": sub, "exp": now + 60} | extra
    return jwt.encode(payload, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc  ", "abc"),
        ("Bearer a.b-c_d~e+f/g==", "a.b-c_d~e+f/g=="),
        ("Bearer abc def", None),
        ("Bearer ab,c", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Token abc", None),
        ("Bearerabc", None),
        ("abc", None),
    ],
)
def test_bearer_token_parsing(header, expected):
    assert bearer_token(header) == expected


async def test_bastion_token_goes_to_the_store(store: TokenStore, verifier: JwtVerifier):
    info, token = store.create("claude")
    principal = await Authenticator(store, verifier).authenticate(f"Bearer {token}")
    assert principal is not None
    assert (principal.agent, principal.via, principal.credential_id) == ("claude", "token", info.id)
    assert await Authenticator(store, None).authenticate(f"bearer {token}") == principal


async def test_jwt_goes_to_the_verifier(store: TokenStore, verifier: JwtVerifier):
    principal = await Authenticator(store, verifier).authenticate(f"Bearer {make_jwt()}")
    assert principal is not None
    assert (principal.agent, principal.via) == ("cursor", "jwt")


@pytest.mark.parametrize(
    "header",
    [
        lambda: f"Bearer {make_jwt()}",  # JWT, but no verifier configured
        lambda: "Bearer bst_00000000_" + "A" * 43,  # unknown Bastion token
        lambda: f"Basic {make_jwt()}",
    ],
)
async def test_rejected_without_matching_credential(store: TokenStore, header):
    assert await Authenticator(store, None).authenticate(header()) is None


async def test_bst_prefix_is_never_sent_to_jwt(store: TokenStore, verifier: JwtVerifier):
    forged = "bst_" + make_jwt(sub="claude")
    assert await Authenticator(store, verifier).authenticate(f"Bearer {forged}") is None


ALL = None


@pytest.mark.parametrize(
    ("token_servers", "agents", "expected"),
    [
        (ALL, None, ALL),
        (ALL, {}, ALL),  # an empty agents section is no allowlist
        (ALL, {"claude": ALL}, ALL),
        (ALL, {"claude": frozenset({"db"})}, frozenset({"db"})),
        (["db", "web"], {"claude": ALL}, frozenset({"db", "web"})),
        (["db", "web"], {"claude": frozenset({"web", "git"})}, frozenset({"web"})),
        (["db"], {"claude": frozenset({"git"})}, frozenset()),
        (ALL, {"cursor": ALL}, "rejected"),  # not in the allowlist
    ],
)
async def test_agent_allowlist(store: TokenStore, token_servers, agents, expected):
    _, token = store.create("claude", servers=token_servers)
    principal = await Authenticator(store, None, agents).authenticate(f"Bearer {token}")
    if expected == "rejected":
        assert principal is None
    else:
        assert principal is not None
        assert principal.servers == expected


async def test_agent_allowlist_applies_to_jwt(store: TokenStore, verifier: JwtVerifier):
    auth = Authenticator(store, verifier, {"cursor": frozenset({"db"})})
    principal = await auth.authenticate(f"Bearer {make_jwt('cursor')}")
    assert principal is not None
    assert principal.servers == frozenset({"db"})
    assert await auth.authenticate(f"Bearer {make_jwt('mallory')}") is None
