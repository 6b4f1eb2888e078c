"""Secrets never reach the store in clear (redacted mode); large values are cut with their size kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.audit.chain import encode_event
from bastion.audit.events import CallRequested
from bastion.audit.redact import (
    HEAD_CHARS,
    MAX_PAYLOAD_BYTES,
    MAX_STRING_CHARS,
    PAYLOAD_HEAD_CHARS,
    PayloadPolicy,
    SecretRedactor,
    chain_redactors,
    mask_secrets,
    shape_of,
)

PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\nabc\n-----END RSA PRIVATE KEY-----"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"),
        ("token ghp_" + "a" * 36, "ghp_" + "a" * 36, "github-token"),
        ("pat github_pat_" + "B" * 30, "github_pat_" + "B" * 30, "github-token"),
        ("glpat-" + "x" * 20, "glpat-" + "x" * 20, "gitlab-token"),
        ("slack xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij", "slack-token"),
        ("https://hooks.slack.com/services/T000/B000/XXXX", "hooks.slack.com/services/T000", "slack-webhook"),
        ("stripe sk_live_" + "4" * 24, "sk_live_" + "4" * 24, "stripe-key"),
        (f"key:\n{PRIVATE_KEY}\nend", "MIIEowIBAAKCAQEA7x", "private-key"),
        (f"jwt {JWT}", JWT, "jwt"),
        ("Authorization: Bearer abcdef123456789", "abcdef123456789", "bearer"),
        ("postgres://u@h/db?password=hunter22&x=1", "hunter22", "assigned-secret"),
        ('{"api_key": "zzzzsecret"}', "zzzzsecret", "assigned-secret"),
        ("bst_0123abcd_" + "Q" * 43, "Q" * 43, "bastion-token"),
    ],
)
def test_well_known_secrets_are_masked(text: str, secret: str, kind: str) -> None:
    masked = mask_secrets(text)

    assert secret not in masked
    assert f"[REDACTED:{kind}]" in masked


@pytest.mark.parametrize("text", ["SELECT * FROM customers", "the password policy", "ghp_short", "AKIA lower"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_secrets(text) == text


def test_values_under_secret_keys_are_masked_at_any_depth() -> None:
    value = {"db": {"user": "ann", "Password": "p", "api-key": 42}, "headers": [{"Authorization": "x"}], "n": 1}

    assert SecretRedactor()(value) == {
        "db": {"user": "ann", "Password": "[REDACTED]", "api-key": "[REDACTED]"},
        "headers": [{"Authorization": "[REDACTED]"}],
        "n": 1,
    }
    assert value["db"]["Password"] == "p", "the caller's value is not mutated"


@pytest.mark.parametrize("prefix", ["", "db_", "x" * 100 + "_"])
def test_secret_keys_are_recognised_whatever_their_length(prefix: str) -> None:
    """Short key names are remembered between calls, long ones are not: both are masked."""
    for _ in range(2):
        assert PayloadPolicy().apply({f"{prefix}password": "hunter2", f"{prefix}note": "hi"}) == {
            f"{prefix}password": "[REDACTED]",
            f"{prefix}note": "hi",
        }


def test_redacted_mode_cuts_long_strings_keeping_their_size() -> None:
    long = "é" * (MAX_STRING_CHARS + 1)

    stored = PayloadPolicy("redacted").apply({"blob": long, "short": "ok"})

    assert stored == {
        "blob": {"_truncated": True, "size": len(long.encode()), "head": long[:HEAD_CHARS]},
        "short": "ok",
    }


def test_redaction_happens_before_truncation() -> None:
    """A secret beyond the cut must not survive in the head, nor one straddling it."""
    text = "x" * (HEAD_CHARS - 5) + " AKIAIOSFODNN7EXAMPLE " + "y" * MAX_STRING_CHARS

    stored = PayloadPolicy("redacted").apply({"t": text})

    assert "AKIAIOSF" not in json.dumps(stored)


@pytest.mark.parametrize("mode", ["full", "redacted"])
def test_huge_payloads_are_capped_in_every_mode(mode: Any) -> None:
    many = {f"k{n}": "é" * 1000 for n in range(200)}
    event = CallRequested(method="tools/call", tool="t", arguments=many)

    stored = json.loads(encode_event(event, PayloadPolicy(mode)).data)["arguments"]

    assert stored["_truncated"] is True
    assert stored["size"] > MAX_PAYLOAD_BYTES
    assert len(stored["head"]) == PAYLOAD_HEAD_CHARS


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        (
            {"q": "x", "n": 1, "f": 1.5, "b": True, "z": None},
            {"q": "string", "n": "integer", "f": "number", "b": "boolean", "z": "null"},
        ),
        (
            {"ids": [1, 2], "empty": [], "rows": [{"a": "s"}]},
            {"ids": ["integer"], "empty": [], "rows": [{"a": "string"}]},
        ),
        ("plain", "string"),
    ],
)
def test_shape_keeps_keys_and_types_only(value: Any, shape: Any) -> None:
    assert shape_of(value) == shape
    assert PayloadPolicy("shape").apply(value) == shape


def test_full_mode_stores_as_is() -> None:
    value = {"password": "hunter2"}

    assert PayloadPolicy("full").apply(value) is value


def test_plugged_in_redactors_run_after_the_builtin_one() -> None:
    def catalogue(value: Any) -> Any:
        return json.loads(json.dumps(value).replace("ACME-SECRET-1", "[REDACTED:acme]"))

    policy = PayloadPolicy("redacted", chain_redactors(SecretRedactor(), catalogue))

    assert policy.apply({"a": "ACME-SECRET-1", "b": "AKIAIOSFODNN7EXAMPLE"}) == {
        "a": "[REDACTED:acme]",
        "b": "[REDACTED:aws-access-key-id]",
    }


def test_a_failing_redactor_stores_nothing_of_the_value() -> None:
    def broken(value: Any) -> Any:
        raise RuntimeError("detector crashed")

    assert PayloadPolicy("redacted", broken).apply({"password": "hunter2"}) == {"_redaction_failed": "RuntimeError"}


def test_the_trigger_screen_finds_what_each_test_finds() -> None:
    """`has_trigger` (one Aho-Corasick pass) against one `in` test per trigger."""
    from bastion.audit.redact import _TRIGGERS, has_trigger

    texts = [t.lower() for t in ("SELECT 1", "my passwd", "xoxo", "a.hooks.slack.com.b", "EYJ", "bearer", "")]
    texts += [trigger[1:] for trigger in _TRIGGERS] + [trigger[:-1] for trigger in _TRIGGERS] + list(_TRIGGERS)
    texts += [f"..{a}{b}.." for a, b in zip(_TRIGGERS, reversed(_TRIGGERS), strict=True)]
    for text in texts:
        assert has_trigger(text) == any(trigger in text for trigger in _TRIGGERS), text


def test_a_string_held_twice_is_masked_the_same_each_time() -> None:
    seen: list[str] = []

    def counting(text: str) -> str:
        seen.append(text)
        return text.replace("ACME-SECRET-1", "[REDACTED:acme]")

    result = {
        "content": [{"type": "text", "text": "key ACME-SECRET-1"}],
        "structuredContent": {"r": "key ACME-SECRET-1"},
    }
    stored = PayloadPolicy("redacted", SecretRedactor(counting)).apply(result, result=True)

    assert stored == {
        "content": [{"type": "text", "text": "key [REDACTED:acme]"}],
        "structuredContent": {"r": "key [REDACTED:acme]"},
    }
    assert seen.count("key ACME-SECRET-1") == 1
