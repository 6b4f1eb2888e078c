"""CEL expressions for the rare complex rule (`cel:` in a rule), through cel-python (`celpy`).

An expression sees `agent`, `roles`, `server`, `tool`, `arguments`, `annotations` (a map,
empty when the server does not list the tool), `allowed_roots` and `allowed_domains`.
An expression that fails to evaluate (a missing key, a type error) or does not give a
boolean counts as true for `deny` and `ask` rules and false for `allow` rules, so an error
never lets a call through that the rule was written to stop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError

from bastion.guard.policy.server_context import ServerContext

logger = logging.getLogger(__name__)

_ENVIRONMENT = celpy.Environment()


class CelSyntaxError(ValueError):
    """The expression does not parse; the message shows where."""


def compile_program(text: str) -> celpy.Runner:
    """A runnable program for `text`; CelSyntaxError saying what is wrong."""
    try:
        return _ENVIRONMENT.program(_ENVIRONMENT.compile(text))
    except CELParseError as exc:
        raise CelSyntaxError(" ".join(str(exc).split())) from None


@dataclass(frozen=True, slots=True)
class CelExpression:
    """A compiled `cel:` expression, and what an evaluation error counts as."""

    text: str
    program: celpy.Runner
    on_error: bool

    @classmethod
    def compile(cls, text: str, *, on_error: bool) -> CelExpression:
        return cls(text, compile_program(text), on_error)

    def evaluate(
        self,
        *,
        agent: str,
        roles: frozenset[str],
        server: str,
        tool: str,
        annotations: Mapping[str, Any] | None,
        arguments: Mapping[str, Any],
        context: ServerContext,
    ) -> tuple[bool, str | None]:
        """The expression's truth, and the evaluation error when there was one."""
        activation = {
            "agent": celtypes.StringType(agent),
            "roles": json_to_cel(sorted(roles)),
            "server": celtypes.StringType(server),
            "tool": celtypes.StringType(tool),
            "annotations": json_to_cel(dict(annotations or {})),
            "arguments": json_to_cel(dict(arguments)),
            "allowed_roots": json_to_cel(list(context.roots)),
            "allowed_domains": json_to_cel(list(context.domains)),
        }
        try:
            result = self.program.evaluate(activation)
        except Exception as exc:  # celpy raises its own errors and, on odd input, Python ones
            return self.on_error, f"{type(exc).__name__}: {exc}"
        if not isinstance(result, celtypes.BoolType):
            return self.on_error, f"the expression gave {type(result).__name__}, not a boolean"
        return bool(result), None
