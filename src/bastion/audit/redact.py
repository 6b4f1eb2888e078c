"""How tool arguments and results are stored: `full`, `redacted` (the default) or `shape`
(results also `none`), personal data masked or not (`pii.py`).

A `Redactor` is any function of a JSON-like value that returns it with secrets masked.
The built-in one, `SecretRedactor`, recognises well-known credential formats in strings
and masks the values of keys that name a secret (`password`, `api_key`, `dbPassword`, ...:
see `secret_keys.py`). Other
recognisers (the policy catalogue's secret detectors) plug in as further redactors,
`PayloadPolicy("redacted", chain_redactors(SecretRedactor(), catalogue_redactor))`, or, when
they mask text, as further text recognisers of the built-in one, walked in the same pass:
`PayloadPolicy("redacted", SecretRedactor(mask_catalogue_secrets))`.

In `redacted` mode long strings are then cut, keeping their size, so one huge value cannot
bloat the log; `shape` keeps only keys and value types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import ahocorasick  # type: ignore[import-not-found,unused-ignore]

from bastion.audit.secret_keys import names_secret
from bastion.compact_json import compact_json
from bastion.json_scalars import JSON_SCALARS

AuditMode = Literal["full", "redacted", "shape"]
ResultsMode = Literal["full", "redacted", "shape", "none"]
"""How results are stored: as arguments are (`AuditMode`), or `none`: not at all."""

MAX_STRING_CHARS = 2048
"""Strings longer than this are stored as `{"_truncated": true, "size": <UTF-8 bytes>, "head": <first chars>}`."""
HEAD_CHARS = 256
MAX_PAYLOAD_BYTES = 64 * 1024
"""A whole payload whose JSON is larger than this (after the above) is stored truncated the same way."""
PAYLOAD_HEAD_CHARS = 4096
MASK = "[REDACTED]"


class Redactor(Protocol):
    """Returns `value` (a JSON-like value: dicts, lists, strings, numbers) with secrets masked.

    Must not mutate `value`; must not raise on any JSON-like input.
    """

    def __call__(self, value: Any, /) -> Any: ...


SECRET_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private-key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?-----END [A-Z0-9 ]*-----", re.S)),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})")),
    ("gitlab-token", re.compile(r"\bgl(?:pat|dt|rt|ptt|cbt|soat|ft)-[A-Za-z0-9_\-]{20,}")),
    ("slack-token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}")),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]+")),
    ("stripe-key", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("bastion-token", re.compile(r"\bbst_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")),
    ("bearer", re.compile(r"(?i:(?<=bearer ))[A-Za-z0-9._~+/=-]{8,}")),
    (
        "assigned-secret",
        re.compile(
            r"(?<![A-Za-z0-9])(?i:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|"
            r"client[_-]?secret|aws_secret_access_key)[\"']?\s*[=:]\s*[\"']?(?P<value>[^\s\"'&,;]{4,})"
        ),
    ),
)
"""Well-known credential formats, by name. A match is replaced by `[REDACTED:<name>]`."""

_ANY_SECRET = re.compile("|".join(f"(?P<f{i}>{p.pattern})" for i, (_, p) in enumerate(SECRET_FORMATS)), re.S)
_ASSIGNED = next(i for i, (name, _) in enumerate(SECRET_FORMATS) if name == "assigned-secret")
MIN_SECRET_CHARS = 8
"""No recognised format is shorter than this, so shorter strings are not scanned."""


_TRIGGERS = (
    *("akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "anpa"),
    *("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    *("glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glsoat-", "glft-"),
    *("xox", "hooks.slack.com", "_live_", "_test_", "bst_", "eyj", "bearer", "private key"),
    *("password", "passwd", "pwd", "secret", "api_key", "api-key", "apikey", "token"),
)
"""Lower-case fragments every recognised format contains: strings with none are not scanned."""


_TRIGGER_FINDER = ahocorasick.Automaton()
for _trigger in _TRIGGERS:
    _TRIGGER_FINDER.add_word(_trigger, _trigger)
_TRIGGER_FINDER.make_automaton()


def has_trigger(lowered: str) -> bool:
    """Whether `lowered` holds any of `_TRIGGERS`: `any(t in lowered for t in _TRIGGERS)`, in one pass."""
    return next(_TRIGGER_FINDER.iter(lowered), None) is not None


def mask_secrets(text: str) -> str:
    """`text` with every recognised credential replaced by `[REDACTED:<format>]`."""
    if len(text) < MIN_SECRET_CHARS or not has_trigger(text.lower()):
        return text
    return _ANY_SECRET.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    index = int(match.lastgroup[1:]) if match.lastgroup else -1
    if index == _ASSIGNED:  # `password=hunter2` -> `password=[REDACTED:assigned-secret]`: the name stays
        return match.group(0)[: match.start("value") - match.start(0)] + "[REDACTED:assigned-secret]"
    return f"[REDACTED:{SECRET_FORMATS[index][0]}]"


TextMasker = Callable[[str], str]
"""Returns a string with the secrets it recognises masked (`mask_secrets` is one)."""


class SecretRedactor:
    """The built-in `Redactor`: credential formats in any string, and values under secret-named keys.

    `also` are further recognisers of secrets in text (the policy catalogue's): the redactor
    then does what `chain_redactors(SecretRedactor(), *(strings_masked_by(m) for m in also))`
    does, in one walk over the value instead of one per recogniser.
    """

    __slots__ = ("also", "masked_key_value")

    def __init__(self, *also: TextMasker) -> None:
        self.also = also
        self.masked_key_value = self.mask_text(MASK)
        """What a value under a secret-named key becomes once every recogniser has seen it."""

    def mask_text(self, text: str) -> str:
        """`text` with what every recogniser finds masked, the built-in one first."""
        text = mask_secrets(text)
        for mask in self.also:
            text = mask(text)
        return text

    def __call__(self, value: Any, /) -> Any:
        if not self.also:
            return _builtin_redaction(value)
        value = _builtin_redaction(value)
        for mask in self.also:
            value = strings_masked_by(mask, value)
        return value


def _builtin_redaction(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return mask_secrets(value)
    if kind is dict or isinstance(value, Mapping):
        return {key: MASK if _is_secret_key(key, item) else _builtin_redaction(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_builtin_redaction(item) for item in value]
    if isinstance(value, str):
        return mask_secrets(value)
    return value


def strings_masked_by(mask: TextMasker, value: Any) -> Any:
    """`value` (a JSON-like value) with `mask` applied to every string in it; keys are kept."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {key: strings_masked_by(mask, item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strings_masked_by(mask, item) for item in value]
    return value


def _is_secret_key(key: Any, item: Any) -> bool:
    if type(key) is not str:
        return False
    kind = type(item)
    if kind is not str and kind is not int and (kind is bool or not isinstance(item, str | int)):
        return False  # exact `str`/`int` (the JSON values) without a trip through `isinstance`
    return names_secret(key)


def chain_redactors(*redactors: Redactor) -> Redactor:
    """One redactor applying each of `redactors` in turn."""

    def redact(value: Any, /) -> Any:
        for redactor in redactors:
            value = redactor(value)
        return value

    return redact


def truncate_large(value: Any) -> Any:
    """`value` with strings over `MAX_STRING_CHARS` cut to a head, their size kept."""
    kind = type(value)
    if kind is str or isinstance(value, str):
        if len(value) <= MAX_STRING_CHARS:
            return value
        return {"_truncated": True, "size": len(value.encode("utf-8", "surrogatepass")), "head": value[:HEAD_CHARS]}
    if kind is dict or isinstance(value, Mapping):
        return {key: truncate_large(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [truncate_large(item) for item in value]
    return value


def _mask_and_truncate(value: Any, redactor: SecretRedactor, masked: dict[str, str]) -> Any:
    """`truncate_large(redactor(value))`, in one walk (the default mode's hot path). `masked`
    remembers each string's masked form for the walk: a result often holds its text twice
    (`content` and `structuredContent`)."""
    kind = type(value)
    if kind is str:
        done = masked.get(value)
        if done is None:
            done = masked[value] = redactor.mask_text(value)
        return truncate_large(done)
    if kind is dict:
        return {
            key: truncate_large(redactor.masked_key_value)
            if _is_secret_key(key, item)
            else _mask_and_truncate(item, redactor, masked)
            for key, item in value.items()
        }
    if kind is list or kind is tuple:
        return [_mask_and_truncate(item, redactor, masked) for item in value]
    if kind in JSON_SCALARS:
        return value
    return truncate_large(redactor(value))


def shape_of(value: Any) -> Any:
    """Keys and types only: `{"q": "string", "ids": ["integer"]}`."""
    if isinstance(value, Mapping):
        return {str(key): shape_of(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [shape_of(value[0])] if value else []
    return _TYPE_NAMES.get(type(value), type(value).__name__)


_TYPE_NAMES: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


@dataclass(frozen=True, slots=True)
class PayloadPolicy:
    """How a payload (tool arguments, a result) is turned into what the store keeps.

    `mode` is for arguments, and for results unless `results` says otherwise (`none`: a
    result is not stored at all, its size still is). `pii` masks personal data in every
    string that is stored (`pii.py`), whatever the mode.
    """

    mode: AuditMode = "redacted"
    redactor: Redactor | Callable[[Any], Any] = field(default_factory=SecretRedactor)
    results: ResultsMode | None = None
    pii: TextMasker | None = None

    def apply(self, value: Any, *, result: bool = False) -> Any:
        """What to store of `value` (a result when `result`). Fails closed: a redactor that
        raises stores nothing of it."""
        mode = self.results if result and self.results is not None else self.mode
        if value is None or mode == "none":
            return None
        if mode == "shape":
            return shape_of(value)
        if self.pii is not None:
            try:
                value = strings_masked_by(self.pii, value)
            except Exception as exc:  # never let a faulty masker leak the clear value
                return {"_redaction_failed": type(exc).__name__}
        if mode == "full":
            return value
        try:
            if type(self.redactor) is SecretRedactor:
                return _mask_and_truncate(value, self.redactor, {})  # the same as below, in one walk
            return truncate_large(self.redactor(value))
        except Exception as exc:  # never let a faulty redactor leak the clear value
            return {"_redaction_failed": type(exc).__name__}


def cap_payload(value: Any) -> Any:
    """`value`, or a truncated stand-in when its JSON is over `MAX_PAYLOAD_BYTES`."""
    try:
        text = compact_json(value)
    except ValueError:  # a circular reference
        return {"_unserialisable": True}
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= MAX_PAYLOAD_BYTES:
        return value
    return {"_truncated": True, "size": size, "head": text[:PAYLOAD_HEAD_CHARS]}
