"""Rule conditions on argument values, compiled once: `when: {arguments.sql: {sql: [drop]}}`.

A condition selects values with an argument path and holds when one selected value passes
every test given. A selected list is tested item by item. Tests that need the server's
context (`outside_roots`, `off_allowlist`) never hold when that context is not configured.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.guard.policy.config import ConditionConfig
from bastion.guard.policy.paths import Step, parse_argument_path, select
from bastion.guard.policy.regex import compile_regex
from bastion.guard.policy.server_context import ServerContext

Test = Callable[[Any, ServerContext], bool]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _scalar_equals(expected: Any) -> Test:
    def test(value: Any, context: ServerContext) -> bool:
        if isinstance(expected, bool) or isinstance(value, bool):
            return value is expected
        if isinstance(expected, int | float) and isinstance(value, int | float):
            return float(value) == float(expected)
        return bool(value == expected)

    return test


def _compile_tests(config: ConditionConfig) -> list[Test]:
    # The catalogue (parsers and all) is loaded only by rules that use its predicates.
    from bastion.guard.policy import catalogue

    tests: list[Test] = []
    if "equals" in config.model_fields_set:
        tests.append(_scalar_equals(config.equals))
    if config.in_ is not None:
        options = [_scalar_equals(option) for option in config.in_]
        tests.append(lambda value, context: any(option(value, context) for option in options))
    if config.glob is not None:
        pattern = config.glob
        tests.append(lambda value, context: isinstance(value, str) and fnmatch.fnmatchcase(value, pattern))
    if config.regex is not None:
        regex = compile_regex(config.regex)
        tests.append(lambda value, context: isinstance(value, str) and regex.search(value) is not None)
    for bound, compare in (
        (config.gt, lambda a, b: a > b),
        (config.gte, lambda a, b: a >= b),
        (config.lt, lambda a, b: a < b),
        (config.lte, lambda a, b: a <= b),
    ):
        if bound is not None:
            tests.append(_numeric(bound, compare))
    if config.sql is not None:
        wanted = frozenset(config.sql)
        tests.append(lambda value, context: isinstance(value, str) and _sql_has(value, wanted))
    if config.outside_roots is not None:
        expect = config.outside_roots
        tests.append(
            lambda value, context: (
                isinstance(value, str)
                and bool(context.roots)
                and catalogue.path_outside_roots(value, context.roots) is expect
            )
        )
    if config.off_allowlist is not None:
        expect = config.off_allowlist
        tests.append(
            lambda value, context: (
                isinstance(value, str)
                and bool(context.domains)
                and catalogue.url_off_allowlist(value, context.domains) is expect
            )
        )
    if config.secret is not None:
        expect = config.secret
        tests.append(lambda value, context: isinstance(value, str) and bool(catalogue.find_secrets(value)) is expect)
    return tests


def _numeric(bound: float, compare: Callable[[float, float], bool]) -> Test:
    def test(value: Any, context: ServerContext) -> bool:
        number = _number(value)
        return number is not None and compare(number, bound)

    return test


def _sql_has(text: str, wanted: frozenset[str]) -> bool:
    from bastion.guard.policy.catalogue import sql_operations

    operations = sql_operations(text)
    return operations is not None and not wanted.isdisjoint(_SQL_KIND.get(op, op) for op in operations)


_SQL_KIND = {
    "delete_without_where": "delete",
    "update_without_where": "update",
    "alter_drop": "alter",
    "drop_database": "drop",
    "copy_to": "copy",
    "copy_from": "copy",
    "unparsed_write": "command",
    "dynamic_sql": "command",
}
"""The statement kind (what `sql:` names) of each finer operation the catalogue reports: `sql: [delete]`
holds for a DELETE without WHERE too."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One compiled `when` entry."""

    path: str
    steps: tuple[Step, ...]
    tests: tuple[Test, ...]
    exists: bool | None
    source: Mapping[str, Any]
    """The tests as written, for explanations."""

    @classmethod
    def compile(cls, path: str, config: ConditionConfig) -> Condition:
        written = config.model_dump(by_alias=True, exclude_unset=True)
        return cls(path, parse_argument_path(path), tuple(_compile_tests(config)), config.exists, written)

    def holds(self, arguments: Mapping[str, Any], context: ServerContext) -> bool:
        values = select(arguments, self.steps)
        if self.exists is not None:
            first = next(values, _MISSING)
            if (first is not _MISSING) is not self.exists:
                return False
            if not self.tests:
                return True
            values = _chain(first, values) if first is not _MISSING else iter(())
        return any(self._passes(value, context) for value in _flatten(values))

    def _passes(self, value: Any, context: ServerContext) -> bool:
        return all(test(value, context) for test in self.tests)

    def describe(self) -> str:
        tests = ", ".join(f"{key}: {json.dumps(value)}" for key, value in self.source.items())
        return f"{self.path} {{{tests}}}"


_MISSING = object()


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _flatten(values: Iterator[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list | tuple):
            yield from value
        else:
            yield value
