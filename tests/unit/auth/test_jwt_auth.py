from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bastion.auth.jwt_auth import JWKS_MAX_AGE, JWKS_MIN_REFETCH_INTERVAL, JwtSettings, JwtVerifier
from bastion.model import Principal

ISSUER = "https://idp.example"
AUDIENCE = "bastion"
SECRET = "s" * 32
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_PEM = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)

pytestmark = pytest.mark.anyio


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "claude", "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def rs256(payload: dict[str, Any], key: Any = RSA_KEY, **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=headers.pop("alg", "RS256"), headers=headers or None)


@pytest.fixture
def pem_verifier() -> JwtVerifier:
    return JwtVerifier(JwtSettings(issuer=ISSUER, audience=AUDIENCE, public_key=RSA_PEM))


async def test_rs256_with_static_pem(pem_verifier: JwtVerifier):
    principal = await pem_verifier.verify(rs256(claims()))
    assert principal == Principal(agent="claude", servers=None, via="jwt", credential_id=f"jwt:{ISSUER}:claude")


async def test_hs256_with_secret():
    verifier = JwtVerifier(JwtSettings(issuer=ISSUER, audience=AUDIENCE, secret=SECRET, algorithms=("HS256",)))
    assert (await verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))) is not None
    assert (await verifier.verify(jwt.encode(claims(), "t" * 32, algorithm="HS256"))) is None


def _unsigned(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, None, algorithm="none")


def _confused(payload: dict[str, Any]) -> str:
    """HS256 keyed with the RSA public key PEM: the classic algorithm-confusion forgery."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(payload).encode())
    signature = hmac.new(RSA_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("wrong issuer", lambda: rs256(claims(iss="https://evil.example"))),
        ("wrong audience", lambda: rs256(claims(aud="other"))),
        ("no audience", lambda: rs256(claims(aud=None))),
        ("no issuer", lambda: rs256(claims(iss=None))),
        ("no exp", lambda: rs256(claims(exp=None))),
        ("expired beyond leeway", lambda: rs256(claims(exp=int(time.time()) - 60))),
        ("not yet valid", lambda: rs256(claims(nbf=int(time.time()) + 120))),
        ("issued in the future", lambda: rs256(claims(iat=int(time.time()) + 120))),
        ("bad signature", lambda: rs256(claims(), key=OTHER_RSA_KEY)),
        ("alg none", lambda: _unsigned(claims())),
        ("alg confusion", lambda: _confused(claims())),
        ("RS512 not allowed", lambda: rs256(claims(), alg="RS512")),
        ("no agent claim", lambda: rs256(claims(sub=None))),
        ("empty agent", lambda: rs256(claims(sub=""))),
        ("agent not a string", lambda: rs256(claims(sub=42))),
        ("garbage", lambda: "not.a.jwt"),
        ("empty", lambda: ""),
    ],
)
async def test_rejected(pem_verifier: JwtVerifier, name: str, token):
    assert (await pem_verifier.verify(token())) is None, name


async def test_expiry_within_leeway_is_accepted(pem_verifier: JwtVerifier):
    assert (await pem_verifier.verify(rs256(claims(exp=int(time.time()) - 10)))) is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["db", "web"], frozenset({"db", "web"})),
        ("db web", frozenset({"db", "web"})),
        ([], frozenset()),
        ("absent", None),
    ],
)
async def test_servers_claim(value, expected):
    settings = JwtSettings(
        issuer=ISSUER, audience=AUDIENCE, public_key=RSA_PEM, agent_claim="client_id", servers_claim="mcp_servers"
    )
    extra = {} if value == "absent" else {"mcp_servers": value}
    principal = await JwtVerifier(settings).verify(rs256(claims(client_id="cursor", **extra)))
    assert principal is not None
    assert principal.agent == "cursor"
    assert principal.servers == expected
    assert principal.credential_id == f"jwt:{ISSUER}:claude"


@pytest.mark.parametrize("value", [42, [1, 2], {"db": True}])
async def test_malformed_servers_claim_is_rejected(value):
    settings = JwtSettings(issuer=ISSUER, audience=AUDIENCE, public_key=RSA_PEM, servers_claim="mcp_servers")
    assert (await JwtVerifier(settings).verify(rs256(claims(mcp_servers=value)))) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"public_key": RSA_PEM, "secret": SECRET}, "exactly one"),
        ({"public_key": RSA_PEM, "algorithms": ("HS256",)}, "cannot be used"),
        ({"public_key": RSA_PEM, "algorithms": ("none",)}, "cannot be used"),
        ({"public_key": RSA_PEM, "algorithms": ()}, "at least one"),
        ({"secret": SECRET, "algorithms": ("RS256",)}, "cannot be used"),
        ({"secret": "short", "algorithms": ("HS256",)}, "at least 32 bytes"),
        ({"jwks_url": "http://idp.example/jwks"}, "https"),
        ({"jwks_url": "ftp://127.0.0.1/jwks"}, "https"),
        ({"public_key": RSA_PEM, "issuer": ""}, "issuer"),
    ],
)
def test_settings_are_validated(kwargs, message):
    base: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    with pytest.raises(ValueError, match=message):
        JwtSettings(**(base | kwargs))


def test_non_verifying_public_key_is_refused():
    from cryptography.hazmat.primitives.asymmetric import x25519

    pem = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError, match="public_key"):
        JwtVerifier(JwtSettings(issuer=ISSUER, audience=AUDIENCE, public_key=pem))


# --- JWKS, served by a real HTTP server on 127.0.0.1 ---------------------------------------


@dataclass
class JwksServer:
    keys: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    url: str = ""


def jwk(key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    return algorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid, "use": "sig"} | extra


@pytest.fixture(scope="module")
def jwks_http_server() -> Iterator[JwksServer]:
    """One server for the module; `jwks_server` resets what it serves for each test."""
    state = JwksServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def jwks_server(jwks_http_server: JwksServer) -> JwksServer:
    jwks_http_server.keys = []
    jwks_http_server.requests = 0
    return jwks_http_server


def jwks_verifier(url: str, clock, algorithms: tuple[str, ...] = ("RS256",)) -> JwtVerifier:
    return JwtVerifier(JwtSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=url, algorithms=algorithms), clock=clock)


async def test_jwks_key_rotation(jwks_server: JwksServer, clock):
    jwks_server.keys = [jwk(RSA_KEY, "k1")]
    verifier = jwks_verifier(jwks_server.url, clock)
    assert (await verifier.verify(rs256(claims(), kid="k1"))) is not None
    assert (await verifier.verify(rs256(claims(), kid="k1"))) is not None
    assert jwks_server.requests == 1

    jwks_server.keys = [jwk(RSA_KEY, "k1"), jwk(OTHER_RSA_KEY, "k2")]
    new_token = rs256(claims(), key=OTHER_RSA_KEY, kid="k2")
    clock.advance(JWKS_MIN_REFETCH_INTERVAL - 1)
    assert (await verifier.verify(new_token)) is None  # too soon to refetch
    assert jwks_server.requests == 1

    clock.advance(1)
    assert (await verifier.verify(new_token)) is not None  # unknown kid: refetched
    assert jwks_server.requests == 2
    assert (await verifier.verify(rs256(claims(), kid="k3"))) is None
    assert jwks_server.requests == 2  # no refetch storm on unknown kids


async def test_jwks_removed_key_stops_working_after_max_age(jwks_server: JwksServer, clock):
    jwks_server.keys = [jwk(RSA_KEY, "k1")]
    verifier = jwks_verifier(jwks_server.url, clock)
    token = rs256(claims(), kid="k1")
    assert (await verifier.verify(token)) is not None
    jwks_server.keys = [jwk(OTHER_RSA_KEY, "k2")]
    clock.advance(JWKS_MAX_AGE)
    assert (await verifier.verify(token)) is None
    assert jwks_server.requests == 2


@pytest.mark.parametrize(
    ("keys", "token", "accepted"),
    [
        ([jwk(RSA_KEY, "k1")], lambda: rs256(claims()), True),  # no kid, single key
        ([jwk(RSA_KEY, "k1"), jwk(OTHER_RSA_KEY, "k2")], lambda: rs256(claims()), False),  # no kid, ambiguous
        ([jwk(RSA_KEY, "k1")], lambda: rs256(claims(), alg="RS512", kid="k1"), True),  # key has no alg
        ([jwk(RSA_KEY, "k1", alg="RS256")], lambda: rs256(claims(), alg="RS512", kid="k1"), False),
        ([jwk(RSA_KEY, "k1", use="enc")], lambda: rs256(claims(), kid="k1"), False),
        ([jwk(EC_KEY, "k1")], lambda: rs256(claims(), kid="k1"), False),  # RSA token, EC key
        ([jwk(EC_KEY, "e1")], lambda: rs256(claims(), key=EC_KEY, alg="ES256", kid="e1"), True),
        ([{"kty": "oct", "k": "c2VjcmV0", "kid": "h1"}], lambda: _confused(claims()), False),
        ([jwk(RSA_KEY, "k1")], lambda: _unsigned(claims()), False),
    ],
)
async def test_jwks_key_selection(jwks_server: JwksServer, clock, keys, token, accepted):
    jwks_server.keys = keys
    verifier = jwks_verifier(jwks_server.url, clock, algorithms=("RS256", "RS512", "ES256"))
    assert ((await verifier.verify(token())) is not None) == accepted


async def test_jwks_unreachable_rejects(clock):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    verifier = jwks_verifier(f"http://127.0.0.1:{port}/jwks", clock)
    assert (await verifier.verify(rs256(claims(), kid="k1"))) is None
