"""Dashboard sessions: a signed cookie naming an admin token, re-checked against the token store on every request.

The cookie holds the admin token's id and a random nonce, signed (itsdangerous) with a key
kept in the data folder (mode 0600); never the token itself. A session ends after
`SESSION_MAX_AGE`, at sign-out (the cookie is cleared), or at once for every browser when
its admin token is revoked. The CSRF token of a session is an HMAC of its nonce.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from bastion.admin.tokens import AdminIdentity, AdminTokenStore

SESSION_COOKIE = "bastion_session"
LOGIN_COOKIE = "bastion_login"
SESSION_MAX_AGE = 12 * 3600
LOGIN_MAX_AGE = 3600
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person: the admin token's identity (role as stored now) and the session's CSRF token."""

    identity: AdminIdentity
    csrf: str


def load_secret(path: Path) -> bytes:
    """The signing key in `path`, created (mode 0600, never readable by others) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        if len(key) < _SECRET_BYTES:
            raise ValueError(f"{path}: the dashboard key is too short; delete the file to make a new one") from None
        return key
    key = secrets.token_bytes(_SECRET_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key.hex() + "\n")
    return key


class SessionKeeper:
    """Issues and opens session cookies, and the CSRF tokens that go with them."""

    def __init__(self, secret_file: Path, admin_tokens: AdminTokenStore) -> None:
        self._secret_file = secret_file
        self._admin_tokens = admin_tokens

    @functools.cached_property
    def _secret(self) -> bytes:
        # Read (or made) on first use, so a gateway that never serves the dashboard
        # (`bastion wrap`) never writes the key.
        return load_secret(self._secret_file)

    @functools.cached_property
    def _sessions(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt="bastion.dashboard.session")

    @functools.cached_property
    def _logins(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt="bastion.dashboard.login")

    def issue(self, identity: AdminIdentity) -> str:
        """A new session cookie value for `identity`."""
        return self._sessions.dumps({"t": identity.id, "n": secrets.token_urlsafe(16)})

    def open(self, cookie: str | None) -> Session | None:
        """The session a cookie stands for; None if missing, forged, too old, or its admin token is revoked."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("t"), str) or not isinstance(data.get("n"), str):
            return None
        identity = self._admin_tokens.get(data["t"])
        if identity is None or identity.revoked_at is not None:
            return None
        return Session(identity, self._mac("csrf", data["n"]))

    def login_challenge(self) -> tuple[str, str]:
        """A (cookie value, form token) pair for the sign-in form: the form must echo the cookie's nonce."""
        nonce = secrets.token_urlsafe(16)
        return self._logins.dumps(nonce), self._mac("login", nonce)

    def login_token_valid(self, cookie: str | None, form_token: str) -> bool:
        """Whether the sign-in form's token belongs to the browser's sign-in cookie."""
        if not cookie or not form_token:
            return False
        try:
            nonce = self._logins.loads(cookie, max_age=LOGIN_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(self._mac("login", nonce), form_token)

    def _mac(self, purpose: str, nonce: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{nonce}".encode(), hashlib.sha256).hexdigest()
