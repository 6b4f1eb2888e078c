"""The policy catalogue's secret detectors as an audit `Redactor`.

The audit log's built-in `SecretRedactor` knows a short list of credential formats; the
policy catalogue (`find_secrets`) knows more (cloud, AI and SaaS keys, passwords in
connection URLs). Run after the built-in one, it keeps every secret the catalogue
recognises out of the stored payloads; both run in one walk over each payload.
"""

from __future__ import annotations

from typing import Any

from bastion.audit.redact import Redactor, SecretRedactor, strings_masked_by
from bastion.guard.policy.catalogue.secrets import find_secrets


def mask_catalogue_secrets(text: str) -> str:
    """`text` with each secret the catalogue finds replaced by `[REDACTED:<kind>]`."""
    found = find_secrets(text)
    if not found:
        return text
    parts: list[str] = []
    at = 0
    for match in found:
        parts.append(text[at : match.start])
        parts.append(f"[REDACTED:{match.kind}]")
        at = match.end
    parts.append(text[at:])
    return "".join(parts)


def catalogue_redactor(value: Any, /) -> Any:
    """A `Redactor`: every string in `value` (a JSON-like value) with the catalogue's secrets masked."""
    return strings_masked_by(mask_catalogue_secrets, value)


def audit_redactor() -> Redactor:
    """The gateway's audit redactor: the built-in recogniser, then the policy catalogue's.

    The same as `chain_redactors(SecretRedactor(), catalogue_redactor)`, in one walk."""
    return SecretRedactor(mask_catalogue_secrets)
