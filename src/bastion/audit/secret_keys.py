"""Whether a mapping key names a secret, by the words it is made of.

A key is split into words at `-`, `_`, `.`, spaces and camelCase boundaries, case folded
(`dbPassword` -> `db password`, `AWS_SECRET_ACCESS_KEY` -> `aws secret access key`,
`APIKey` -> `api key`). Words that only say how a value is written (`value`, `hash`,
a number, a single letter: `_v2`, `_b64`...) are set aside at the end. The key names a
secret when what is left ends in a secret word (`password`, `token`, `secret`, `jwt`...) or in `key` after a
word that makes it a key to something (`api key`, `signing key`, `access key`). So
`key`, `keyboard`, `monkey`, `keys_count`, `passenger` and `token_count` are not secrets.
"""

from __future__ import annotations

import re
from functools import lru_cache

SECRET_WORDS = frozenset(
    {
        *("password", "passwd", "pwd", "passphrase", "pass", "passcode", "secret", "secrets"),
        *("token", "jwt", "bearer", "auth", "authorization", "credential", "credentials", "cookie"),
        *("apikey", "privatekey", "secretkey", "accesskey", "sessionid", "sessiontoken", "xapikey"),
    }
)
"""A key whose last word (qualifiers aside) is one of these names a secret."""
KEY_KINDS = frozenset(
    {
        *("api", "private", "secret", "access", "signing", "sign", "encryption", "decryption"),
        *("master", "session", "auth", "hmac", "ssh", "shared", "client", "license", "webhook"),
    }
)
"""`<word> key` names a secret for these words; `key` alone does not."""
SECRET_PAIRS = frozenset({("session", "id")})
QUALIFIERS = frozenset(
    {
        *("value", "str", "string", "hash", "hashed", "b64", "base64", "hex", "raw", "plain", "plaintext"),
        *("text", "data", "enc", "encrypted", "confirm", "confirmation", "again", "repeat", "env", "var"),
    }
)
"""Words that say how a secret is written, not what it is: `password_hash`, `token_b64`."""

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_CACHED_KEY_CHARS = 64


def key_words(key: str) -> list[str]:
    """The words of `key`, lower case: `dbPassword` -> `["db", "password"]`."""
    return [word.lower() for word in _WORDS.findall(key)]


def names_secret(key: str) -> bool:
    """Whether the value under `key` is a secret whatever it looks like."""
    if len(key) > _CACHED_KEY_CHARS:  # an agent's odd key is not kept in the cache
        return _names_secret(key)
    return _cached(key)


@lru_cache(maxsize=4096)
def _cached(key: str) -> bool:
    """`_names_secret`, remembered: an agent's argument names repeat call after call."""
    return _names_secret(key)


def _names_secret(key: str) -> bool:
    words = key_words(key)
    while len(words) > 1 and (words[-1] in QUALIFIERS or words[-1].isdigit() or len(words[-1]) == 1):
        words.pop()
    if not words:
        return False
    last = words[-1]
    if last in SECRET_WORDS:
        return True
    if len(words) < 2:
        return False
    return (last == "key" and words[-2] in KEY_KINDS) or (words[-2], last) in SECRET_PAIRS
