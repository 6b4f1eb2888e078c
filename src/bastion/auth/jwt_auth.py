"""JWT bearer credentials from an identity provider: signature, time, issuer, audience.

The algorithms a token may use come from settings only, split by key kind, so a token can
never pick `none` or an HMAC algorithm keyed with a public key (algorithm confusion).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from bastion.model import Principal

logger = logging.getLogger(__name__)

LEEWAY = 30.0
"""Seconds of clock skew tolerated on exp, nbf and iat."""
JWKS_TIMEOUT = 5.0
JWKS_MIN_REFETCH_INTERVAL = 60.0
"""An unknown `kid` refetches the key set at most this often."""
JWKS_MAX_AGE = 600.0
"""Cached keys are refetched after this long, so keys removed from the set stop working."""

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_MIN_SECRET_BYTES = 32
_VerifyingKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """How to check JWTs. Exactly one of `jwks_url`, `public_key` (PEM) or `secret` is set."""

    issuer: str
    audience: str
    jwks_url: str | None = None
    public_key: str | None = None
    secret: str | None = None
    algorithms: tuple[str, ...] = ("RS256",)
    agent_claim: str = "sub"
    servers_claim: str | None = None

    def __post_init__(self) -> None:
        sources = [s for s in (self.jwks_url, self.public_key, self.secret) if s]
        if len(sources) != 1:
            raise ValueError("JWT settings need exactly one of jwks_url, public_key or secret")
        if not self.issuer or not self.audience:
            raise ValueError("JWT settings need a non-empty issuer and audience")
        if not self.algorithms:
            raise ValueError("JWT settings need at least one algorithm")
        allowed = HMAC_ALGORITHMS if self.secret else ASYMMETRIC_ALGORITHMS
        wrong = [a for a in self.algorithms if a not in allowed]
        if wrong:
            kind = "a secret" if self.secret else "a public key or JWKS"
            raise ValueError(f"JWT algorithms {wrong} cannot be used with {kind}; allowed: {sorted(allowed)}")
        if self.secret and len(self.secret.encode()) < _MIN_SECRET_BYTES:
            raise ValueError(f"JWT secret must be at least {_MIN_SECRET_BYTES} bytes")
        if self.jwks_url and not _is_safe_url(self.jwks_url):
            raise ValueError("jwks_url must use https (plain http only for loopback addresses)")


def _is_safe_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class JwtVerifier:
    """Checks JWTs against `JwtSettings` and turns valid ones into principals.

    `clock` (monotonic seconds) paces JWKS refetches; claim times use the wall clock.
    """

    def __init__(self, settings: JwtSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._static_key: _VerifyingKey | str | None = None
        if settings.secret:
            self._static_key = settings.secret
        elif settings.public_key:
            public_key = load_pem_public_key(settings.public_key.encode())
            if not isinstance(public_key, _VerifyingKey):
                raise ValueError("JWT public_key must be an RSA, EC or EdDSA public key")
            self._static_key = public_key
        self._jwks: dict[str | None, Mapping[str, Any]] = {}
        self._jwk_cache: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._fetch_lock = anyio.Lock()

    async def verify(self, token: str) -> Principal | None:
        """The principal a JWT stands for; None if it is invalid for any reason."""
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg not in self.settings.algorithms:
                return None
            key = self._static_key if self._static_key is not None else await self._jwk_for(header.get("kid"), alg)
            if key is None:
                return None
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(self.settings.algorithms),
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            logger.debug("JWT rejected: %s", exc)
            return None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal | None:
        agent = claims.get(self.settings.agent_claim)
        if not isinstance(agent, str) or not agent:
            return None
        servers: frozenset[str] | None = None
        if self.settings.servers_claim and self.settings.servers_claim in claims:
            value = claims[self.settings.servers_claim]
            if isinstance(value, str):
                value = value.split()
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                return None
            servers = frozenset(value)
        subject = claims.get("sub", agent)
        return Principal(agent=agent, servers=servers, via="jwt", credential_id=f"jwt:{claims['iss']}:{subject}")

    async def _jwk_for(self, kid: Any, alg: str) -> jwt.PyJWK | None:
        if kid is not None and not isinstance(kid, str):
            return None
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= JWKS_MAX_AGE
        if stale or self._find(kid) is None:
            await self._refetch(now)
        data = self._find(kid)
        if data is None or data.get("alg", alg) != alg:
            return None
        cached = self._jwk_cache.get((kid, alg))
        if cached is None:
            # Bind the key to the (allowlisted) algorithm; PyJWK refuses a key of the wrong type.
            cached = self._jwk_cache[(kid, alg)] = jwt.PyJWK(dict(data), algorithm=alg)
        return cached

    def _find(self, kid: str | None) -> Mapping[str, Any] | None:
        if kid is None and len(self._jwks) == 1:
            return next(iter(self._jwks.values()))
        return self._jwks.get(kid)

    async def _refetch(self, now: float) -> None:
        """Fetch the key set, unless an attempt was made less than the minimum interval ago.

        On failure the old keys stay in use, so an identity provider outage does not lock agents out.
        """
        async with self._fetch_lock:
            if self._attempted_at is not None and 0 <= now - self._attempted_at < JWKS_MIN_REFETCH_INTERVAL:
                return
            self._attempted_at = now
            url = self.settings.jwks_url
            assert url is not None
            try:
                async with httpx2.AsyncClient(timeout=JWKS_TIMEOUT, follow_redirects=False) as client:
                    response = await client.get(url, headers={"Accept": "application/json"})
                    response.raise_for_status()
                    document = response.json()
            except (httpx2.HTTPError, ValueError) as exc:
                logger.warning("cannot fetch JWKS from %s: %s", url, exc)
                return
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, list):
                logger.warning("JWKS from %s has no 'keys' list", url)
                return
            self._jwks = {
                k.get("kid"): k
                for k in keys
                # Private members ("d") have no place in a published key set: skip such keys.
                if isinstance(k, dict) and k.get("use", "sig") == "sig" and "kty" in k and "d" not in k
            }
            self._jwk_cache.clear()
            self._fetched_at = now
