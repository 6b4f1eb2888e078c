"""The minimal, strict check of a request's params the relay makes before judging or forwarding it.

The SDK validates every spec request against its pydantic model; the relay checks only
what it reads or what the upstream could not be trusted to refuse the same way (the
shapes of the fields a request must have), and answers INVALID_PARAMS as the SDK does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

_Check = Callable[[Mapping[str, Any]], bool]


def _str(key: str) -> _Check:
    return lambda params: isinstance(params.get(key), str)


def _optional_str(key: str) -> _Check:
    return lambda params: params.get(key) is None or isinstance(params.get(key), str)


def _optional_object(key: str) -> _Check:
    return lambda params: params.get(key) is None or isinstance(params.get(key), dict)


def _object(key: str) -> _Check:
    return lambda params: isinstance(params.get(key), dict)


_CURSOR = (_optional_str("cursor"),)

CHECKS: dict[str, tuple[_Check, ...]] = {
    "tools/list": _CURSOR,
    "resources/list": _CURSOR,
    "resources/templates/list": _CURSOR,
    "prompts/list": _CURSOR,
    "tools/call": (_str("name"), _optional_object("arguments")),
    "resources/read": (_str("uri"),),
    "resources/subscribe": (_str("uri"),),
    "resources/unsubscribe": (_str("uri"),),
    "prompts/get": (_str("name"), _optional_object("arguments")),
    "completion/complete": (_object("ref"), _object("argument")),
    "logging/setLevel": (_str("level"),),
    "ping": (),
}
"""The requests the relay serves, and what their params must hold."""


def params_ok(method: str, params: Mapping[str, Any] | None) -> bool:
    """Whether `params` of a `method` request (one the relay serves) are well-formed enough to go on."""
    values: Mapping[str, Any] = params if params is not None else {}
    meta = values.get("_meta")
    if meta is not None:
        if not isinstance(meta, dict):
            return False
        token = meta.get("progressToken")
        if token is not None and (isinstance(token, bool) or not isinstance(token, str | int)):
            return False
    return all(check(values) for check in CHECKS.get(method, ()))


def invalid_params(method: str) -> ValidationError:
    """What to raise for params that fail `params_ok`: what the SDK's validation raises, so the
    answer (INVALID_PARAMS) and the audit record's error ("invalid request parameters") are the SDK path's."""
    return ValidationError.from_exception_data(method, [])
