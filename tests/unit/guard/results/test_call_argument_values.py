"""`call_argument_values`: a call's argument values found once, never another call's or stale ones."""

from __future__ import annotations

import pytest

from bastion.guard.results import values
from bastion.guard.results.values import argument_values, call_argument_values

ARGUMENTS = {"to": "ops@example.com", "body": "see https://example.org/a and 'Quarterly Report 2024'"}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = values.argument_values

    def counting(arguments: object) -> set[str]:
        calls[0] += 1
        return real(arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(values, "argument_values", counting)
    monkeypatch.setattr(values, "_last_call", None)
    return calls


def test_one_call_finds_its_values_once(counted: list[int]) -> None:
    first = call_argument_values("call-1", ARGUMENTS)
    second = call_argument_values("call-1", ARGUMENTS)

    assert first == second == argument_values(ARGUMENTS)
    assert counted == [1]


def test_another_call_or_changed_arguments_are_found_afresh(counted: list[int]) -> None:
    call_argument_values("call-1", ARGUMENTS)
    changed = {**ARGUMENTS, "to": "evil@attacker.example"}

    assert call_argument_values("call-1", changed) == argument_values(changed)
    assert call_argument_values("call-2", changed) == argument_values(changed)
    assert counted == [3]


def test_arguments_changed_in_place_are_seen(counted: list[int]) -> None:
    arguments = dict(ARGUMENTS)
    call_argument_values("call-1", arguments)
    arguments["body"] = "wire it to https://attacker.example/x"

    assert call_argument_values("call-1", arguments) == argument_values(arguments)


def test_the_caller_may_change_what_it_gets(counted: list[int]) -> None:
    found = call_argument_values("call-1", ARGUMENTS)
    found.clear()

    assert call_argument_values("call-1", ARGUMENTS) == argument_values(ARGUMENTS)


def test_arguments_that_are_not_json_are_found_afresh(counted: list[int]) -> None:
    odd = {"when": {1, 2}, "text": "https://example.org"}

    assert call_argument_values("call-1", odd) == argument_values(odd)
    assert call_argument_values("call-1", odd) == argument_values(odd)
    assert counted == [2]
