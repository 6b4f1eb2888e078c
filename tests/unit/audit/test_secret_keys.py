"""Secret key names are recognised by their words, however they are written (issue 13, item 4)."""

from __future__ import annotations

import pytest

from bastion.audit.redact import MASK, PayloadPolicy
from bastion.audit.secret_keys import key_words, names_secret

SECRET_KEYS = [
    # the list
    *("dbPassword", "githubToken", "apiToken", "secret_key", "SECRET_KEY", "aws_secret_access_key", "access_key"),
    *("signing_key", "encryption_key", "passphrase", "pass", "bearer", "jwt"),
    # what was already masked
    *("password", "Password", "api-key", "api_key", "apikey", "Authorization", "token", "client_secret"),
    *("private_key", "cookie", "session_id", "x-api-key", "credentials", "refresh_token", "auth"),
    # other spellings
    *("DB_PASSWORD", "db.password", "db-password", "APIKey", "XApiKey", "SigningKey", "GITHUB_TOKEN"),
    *(
        "password_hash",
        "token_b64",
        "password2",
        "newPassword",
        "user.auth.token",
        "SessionId",
        "idToken",
        "password_v2",
    ),
    *("AWS_SECRET_ACCESS_KEY", "webhookSecret", "masterKey", "ssh_private_key", "jwtSecret", "PASSWD"),
]
NOT_SECRET_KEYS = [
    *("key", "keyboard", "monkey", "keys_count", "passenger", "token_count", "max_tokens", "keys", "Key"),
    *("primary_key", "sort_key", "key_id", "passport", "bypass", "compass", "secretary", "author"),
    *("tokenizer", "jwt_issuer", "password_policy", "secret_name", "access_level", "session", "cookies_enabled"),
    *("name", "query", "sql", "hash", "value", "id", "", "_", "2", "turkey", "hockey", "passed"),
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_key_naming_a_secret_is_masked(key: str) -> None:
    assert names_secret(key), key_words(key)
    assert PayloadPolicy().apply({key: "s3cr3t-value", "other": "kept"}) == {key: MASK, "other": "kept"}


@pytest.mark.parametrize("key", NOT_SECRET_KEYS)
def test_a_key_not_naming_a_secret_is_kept(key: str) -> None:
    assert not names_secret(key), key_words(key)
    assert PayloadPolicy().apply({key: "plain value"}) == {key: "plain value"}


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("dbPassword", ["db", "password"]),
        ("AWS_SECRET_ACCESS_KEY", ["aws", "secret", "access", "key"]),
        ("APIKey", ["api", "key"]),
        ("user.auth-token_v2", ["user", "auth", "token", "v", "2"]),
        ("x" * 100 + "_password", ["x" * 100, "password"]),
    ],
)
def test_keys_split_into_words(key: str, words: list[str]) -> None:
    assert key_words(key) == words
