"""Secrets: well-known credential formats anywhere in the arguments.

Each format has a fixed prefix or shape and a random part; the random part must also look
random (enough distinct characters, no `EXAMPLE`/`xxxx`/`your_..._here`), so documentation
placeholders and `${GITHUB_TOKEN}` do not match. JWTs must decode to a JSON header with `alg`.
Connection URLs match only with a real password (not `${VAR}`, `<password>`, `****`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.needles import NEEDLES
from bastion.guard.policy.catalogue.windows import LONG_TEXT, needle_windows
from bastion.model import Decision

if TYPE_CHECKING:  # the call view's parsers load with the first call, not with the redactor
    from bastion.guard.policy.catalogue.view import CallView

C, H = Severity.CRITICAL, Severity.HIGH
DENY = Decision.DENY

ENTRIES: tuple[Entry, ...] = (
    entry("secrets.aws_key", "AWS access key", "An AWS access key id (AKIA/ASIA...) or a secret access key assigned "
          "to an AWS key name.", C, DENY),
    entry("secrets.gcp_key", "Google Cloud credential", "A Google API key (AIza...), OAuth token (ya29.) or a "
          "service-account JSON private key.", C, DENY),
    entry("secrets.azure_key", "Azure credential", "An Azure storage account key or connection string, or SAS "
          "signature.", C, DENY),
    entry("secrets.github_token", "GitHub token", "ghp_, gho_, ghu_, ghs_, ghr_ or github_pat_ tokens.", C, DENY),
    entry("secrets.gitlab_token", "GitLab token", "glpat-, gldt-, glrt- tokens.", C, DENY),
    entry("secrets.slack_token", "Slack token or webhook", "xoxb-/xoxp-/xoxa-/xapp- tokens and hooks.slack.com "
          "webhook URLs.", C, DENY),
    entry("secrets.stripe_key", "Stripe secret key", "sk_live_/rk_live_ keys (and test keys, which still "
          "authenticate).", C, DENY),
    entry("secrets.api_key", "AI or SaaS API key", "OpenAI (sk-proj-, sk-...T3BlbkFJ), Anthropic (sk-ant-), "
          "Hugging Face, SendGrid, Twilio, npm, PyPI, DigitalOcean and similar keys.", C, DENY),
    entry("secrets.private_key", "Private key", "A PEM/OpenSSH private key block with a body.", C, DENY),
    entry("secrets.jwt", "JSON Web Token", "A signed JWT (bearer credentials).", H, DENY),
    entry("secrets.password", "Password in a connection string", "A database/broker URL with a real password, or "
          "a password assigned in configuration text.", H, DENY),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}


@dataclass(frozen=True, slots=True)
class SecretMatch:
    """A secret in a text: its kind (`aws_access_key`, ...), the span `text[start:end]` and its entry id."""

    kind: str
    start: int
    end: int
    entry_id: str = ""


# (kind, entry id, pattern, group holding the random part)
_PATTERNS: tuple[tuple[str, str, re.Pattern[str], int], ...] = (
    ("aws_access_key", "secrets.aws_key", re.compile(r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b"), 1),
    ("aws_secret_key", "secrets.aws_key",
     re.compile(r"(?i)aws.{0,20}?(?:secret|sk).{0,20}?['\"=:\s]+([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"), 1),
    ("gcp_api_key", "secrets.gcp_key", re.compile(r"\b(AIza[0-9A-Za-z_\-]{35})\b"), 1),
    ("gcp_oauth_token", "secrets.gcp_key", re.compile(r"\b(ya29\.[0-9A-Za-z_\-]{30,})"), 1),
    ("gcp_service_account", "secrets.gcp_key",
     re.compile(r"\"private_key\"\s*:\s*\"(-----BEGIN (?:RSA )?PRIVATE KEY-----[^\"]{40,})"), 1),
    ("azure_storage_key", "secrets.azure_key", re.compile(r"(?i)AccountKey=([A-Za-z0-9+/]{80,90}={0,2})"), 1),
    ("azure_sas", "secrets.azure_key", re.compile(r"[?&]sig=([A-Za-z0-9%+/]{40,}(?:%3D|=)*)"), 1),
    ("github_token", "secrets.github_token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,255})\b"), 1),
    ("github_pat", "secrets.github_token", re.compile(r"\b(github_pat_[A-Za-z0-9_]{60,255})\b"), 1),
    ("gitlab_token", "secrets.gitlab_token", re.compile(r"\b(gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_\-]{20,})"), 1),
    ("slack_token", "secrets.slack_token", re.compile(r"\b(xox[abposr]-[0-9A-Za-z\-]{20,})"), 1),
    ("slack_app_token", "secrets.slack_token", re.compile(r"\b(xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]{32,})"), 1),
    ("slack_webhook", "secrets.slack_token",
     re.compile(r"hooks\.slack\.com/(?:services|workflows)/(T[A-Z0-9]+/[A-Z0-9]+/[A-Za-z0-9]{16,})"), 1),
    ("stripe_key", "secrets.stripe_key", re.compile(r"\b((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{20,})"), 1),
    ("openai_key", "secrets.api_key", re.compile(r"\b(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ"
                                                 r"[A-Za-z0-9_\-]{20,})"), 1),
    ("openai_project_key", "secrets.api_key", re.compile(r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,})"), 1),
    ("anthropic_key", "secrets.api_key", re.compile(r"\b(sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{80,})"), 1),
    ("huggingface_token", "secrets.api_key", re.compile(r"\b(hf_[A-Za-z0-9]{34,})\b"), 1),
    ("sendgrid_key", "secrets.api_key", re.compile(r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})\b"), 1),
    ("twilio_key", "secrets.api_key", re.compile(r"\b(SK[0-9a-f]{32})\b"), 1),
    ("npm_token", "secrets.api_key", re.compile(r"\b(npm_[A-Za-z0-9]{36})\b"), 1),
    ("pypi_token", "secrets.api_key", re.compile(r"\b(pypi-AgE[A-Za-z0-9_\-]{50,})"), 1),
    ("digitalocean_token", "secrets.api_key", re.compile(r"\b(do[opr]_v1_[a-f0-9]{64})\b"), 1),
    ("private_key", "secrets.private_key",
     re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----\s*([A-Za-z0-9+/=\s:,\-]{40,}?)"
                r"(?:-----END|$)"), 1),
    ("jwt", "secrets.jwt", re.compile(r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})"), 1),
    ("connection_password", "secrets.password",
     re.compile(r"\b[a-z][a-z0-9+.\-]{1,20}://[^\s:/@'\"]{1,64}:([^\s@/'\"]{3,128})@[\w.\-\[\]]+"), 1),
    ("password_assignment", "secrets.password",
     re.compile(r"(?i)\b(?:password|passwd|pwd|db_pass|secret_key)\b[\"']?\s*[:=]\s*[\"']([^\s\"']{8,128})[\"']"), 1),
)  # fmt: skip
_NEEDLES: dict[str, tuple[str, ...]] = {
    "aws_access_key": ("akia", "asia", "abia", "acca"),
    "aws_secret_key": ("aws",),
    "gcp_api_key": ("aiza",),
    "gcp_oauth_token": ("ya29.",),
    "gcp_service_account": ("private_key",),
    "azure_storage_key": ("accountkey=",),
    "azure_sas": ("sig=",),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    "github_pat": ("github_pat_",),
    "gitlab_token": ("glpat-", "gldt-", "glrt-", "glptt-", "glcbt-"),
    "slack_token": ("xox",),
    "slack_app_token": ("xapp-",),
    "slack_webhook": ("hooks.slack.com",),
    "stripe_key": ("_live_", "_test_"),
    "openai_key": ("t3blbkfj",),
    "openai_project_key": ("sk-",),
    "anthropic_key": ("sk-ant-",),
    "huggingface_token": ("hf_",),
    "sendgrid_key": ("sg.",),
    "twilio_key": tuple(f"sk{c}" for c in "0123456789abcdef"),
    "npm_token": ("npm_",),
    "pypi_token": ("pypi-",),
    "digitalocean_token": ("_v1_",),
    "private_key": ("private key",),
    "jwt": ("eyj",),
    "connection_password": ("://",),
    "password_assignment": ("password", "passwd", "pwd", "db_pass", "secret_key"),
}
"""Lower-case substrings without which a pattern cannot match."""
_PLACEHOLDER = re.compile(r"(?i)\$\{|\$\(|\{\{|<[^>]*>|%\(|example|sample|dummy|placeholder|changeme|your[_\-]?|"
                          r"x{5,}|\*{3,}|\.{3}|redacted|replace[_\-]?me|fake|test_?key")  # fmt: skip
_WHOLE_TEXT = frozenset({"private_key", "gcp_service_account"})
"""Patterns whose match can run far from their needle (a PEM body): always searched whole."""
_GATE = ("akia", "asia", "abia", "acca", "aws", "aiza", "ya29", "private", "accountkey", "sig=", "gh", "gl", "xox",
         "xapp", "hooks.slack", "_live_", "_test_", "sk", "hf_", "sg.", "npm_", "pypi-", "_v1_", "eyj", "://", "pass",
         "pwd", "secret_key", "github", "t3blbkfj")  # fmt: skip
"""Short substrings, one of which every pattern's needles contain (a checked invariant: the coarse gate a text
passed before the needles were searched all at once; `SECRET_NEEDLES` is the exact gate now)."""
_NEEDLE_SETS: dict[str, frozenset[str]] = {kind: NEEDLES.add(needles) for kind, needles in _NEEDLES.items()}
SECRET_NEEDLES: frozenset[str] = frozenset().union(*_NEEDLE_SETS.values())
"""Every pattern's needles: a text holding none of them holds no secret (the gate, exact)."""
_PATTERNS_BY_NEEDLE: dict[str, tuple[int, ...]] = {
    needle: tuple(i for i, (kind, *_) in enumerate(_PATTERNS) if needle in _NEEDLE_SETS[kind])
    for needle in SECRET_NEEDLES
}
"""For each needle, the patterns (indexes into `_PATTERNS`) that need it: a text's needles name the few patterns
worth running."""


def _entropy(s: str) -> float:
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _random_enough(kind: str, value: str) -> bool:
    if _PLACEHOLDER.search(value):
        return False
    if kind in ("private_key", "connection_password", "password_assignment"):
        return len(set(value)) >= 6
    body = re.sub(r"^[A-Za-z]+[_\-]", "", value)
    return len(set(body)) >= 10 and _entropy(body) >= 3.0


def _jwt_ok(token: str) -> bool:
    head = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header and str(header.get("alg")).lower() != "none"


def find_secrets(text: str) -> list[SecretMatch]:
    """The secrets in `text` as non-overlapping spans (kind, start, end), for findings and for masking.

    Never raises; returns [] for non-strings."""
    if not isinstance(text, str) or len(text) < 8:
        return []
    lowered = text.lower()
    return secrets_in(text, lowered, NEEDLES.find(lowered))


def secrets_in(text: str, lowered: str, hits: frozenset[str]) -> list[SecretMatch]:
    """`find_secrets(text)`, given `text.lower()` and the registered needles it holds (`NEEDLES.find`)."""
    if len(text) < 8:
        return []
    indexes = {i for needle in hits if needle in _PATTERNS_BY_NEEDLE for i in _PATTERNS_BY_NEEDLE[needle]}
    found: list[SecretMatch] = []
    for i in sorted(indexes):  # the others cannot match: no regex pass over the text for them
        kind, eid, pattern, group = _PATTERNS[i]
        if len(text) <= LONG_TEXT or kind in _WHOLE_TEXT:
            windows = [(0, len(text))]
        else:
            windows = needle_windows(lowered, _NEEDLES[kind], 80, 400)
        for m in (m for start, end in windows for m in pattern.finditer(text, start, end)):
            value = m.group(group)
            if not _random_enough(kind, value) or (kind == "jwt" and not _jwt_ok(value)):
                continue
            start, end = m.span(group)
            if any(f.start < end and start < f.end for f in found):
                continue
            found.append(SecretMatch(kind, start, end, eid))
    return sorted(found, key=lambda f: f.start)


def detect(call: CallView) -> Iterator[Finding]:
    for s, lowered, hits in zip(call.strings, call.lowered, call.hits, strict=True):
        if not hits:
            continue  # no needle of any family: no secret (`secrets_in` would say so, slower)
        seen: set[str] = set()
        for match in secrets_in(s.value, lowered, hits):
            if match.entry_id in seen:
                continue
            seen.add(match.entry_id)
            shown = s.value[match.start : match.start + 4] + "…"
            yield Finding(_BY_ID[match.entry_id], f"{match.kind} ({shown}) in {s.path}", s.path)
