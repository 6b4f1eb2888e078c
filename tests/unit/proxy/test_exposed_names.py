from __future__ import annotations

import re

import pytest

from bastion.proxy.exposed_names import exposed_name, may_be_from

VALID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@pytest.mark.parametrize(
    ("prefix", "name", "expected"),
    [
        ("time", "get_current_time", "time__get_current_time"),
        ("every", "simple-prompt", "every__simple-prompt"),
        ("git", "x" * 59, "git__" + "x" * 59),  # 64 characters: kept
    ],
)
def test_a_valid_joined_name_is_kept(prefix: str, name: str, expected: str) -> None:
    assert exposed_name(prefix, name) == expected


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("git", "x" * 60),  # 65 characters
        ("files", "read.file"),
        ("files", "dir/list"),
        ("files", "ünïcode"),
        ("a" * 48, "b" * 60),
    ],
)
def test_any_other_name_is_made_valid_with_a_stable_hash_suffix(prefix: str, name: str) -> None:
    exposed = exposed_name(prefix, name)
    assert VALID.fullmatch(exposed)
    assert exposed == exposed_name(prefix, name)
    assert re.search(r"_[0-9a-f]{8}$", exposed)
    assert may_be_from(prefix, exposed)


def test_two_long_names_with_the_same_start_stay_apart() -> None:
    assert exposed_name("git", "x" * 70 + "a") != exposed_name("git", "x" * 70 + "b")
    assert exposed_name("files", "a.b") != exposed_name("files", "a/b")


@pytest.mark.parametrize(
    ("prefix", "exposed", "expected"),
    [("time", "time__now", True), ("time", "timer__now", False), ("git", "history", False)],
)
def test_may_be_from(prefix: str, exposed: str, expected: bool) -> None:
    assert may_be_from(prefix, exposed) is expected


@pytest.mark.parametrize("tool", ["b__c", "_x", "x" * 80, "a.b__c", "__", "b__" + "c" * 70])
def test_no_tool_of_one_server_takes_a_name_of_another(tool: str) -> None:
    # Prefixes have no `__` and no `_` at either end (config_aggregate.PREFIX): the first `__`
    # of an exposed name ends its prefix, however the tool is named or shortened.
    exposed = exposed_name("a", tool)
    assert exposed.startswith("a__")
    assert exposed.partition("__")[0] == "a"
    assert not may_be_from("a-b", exposed)
    assert not may_be_from("b", exposed)
