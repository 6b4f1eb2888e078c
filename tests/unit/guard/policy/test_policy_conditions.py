"""Argument paths and `when` conditions: what each test selects and when it holds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.guard.policy.conditions import Condition
from bastion.guard.policy.config import ConditionConfig
from bastion.guard.policy.paths import parse_argument_path, select
from bastion.guard.policy.server_context import ServerContext

ARGS: dict[str, Any] = {
    "sql": "SELECT 1",
    "amount": 1500,
    "price": "19.99",
    "flag": True,
    "branch": "release/2.1",
    "steps": [{"cmd": "ls"}, {"cmd": "rm -rf /tmp/x", "opts": {"url": "https://evil.example/x"}}],
    "files": [{"path": "/srv/data/a"}, {"path": "/etc/passwd"}],
    "tags": ["a", "b"],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("arguments.sql", ["SELECT 1"]),
        ("arguments.steps[1].cmd", ["rm -rf /tmp/x"]),
        ("arguments.steps[*].cmd", ["ls", "rm -rf /tmp/x"]),
        ("arguments.steps.*.cmd", ["ls", "rm -rf /tmp/x"]),
        ("arguments.**.url", ["https://evil.example/x"]),
        ("arguments.files.path", ["/srv/data/a", "/etc/passwd"]),
        ("arguments.missing", []),
        ("arguments.sql.deeper", []),
        ("arguments.tags[1]", ["b"]),
    ],
)
def test_paths_select(path: str, expected: list[Any]) -> None:
    assert list(select(ARGS, parse_argument_path(path))) == expected


def test_deep_path_reaches_every_level() -> None:
    values = list(select(ARGS, parse_argument_path("arguments.**")))
    assert "https://evil.example/x" in values
    assert ARGS in values  # zero levels included
    assert 1500 in values


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("sql", "must start with `arguments`"),
        ("args.sql", "must start with `arguments`"),
        ("arguments.", "cannot read it"),
        ("arguments..x", "cannot read it"),
        ("arguments.x[abc]", "cannot read it"),
        ("arguments.del*", "`*` must be a whole step"),
    ],
)
def test_bad_paths(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace("[", r"\[")):
        parse_argument_path(path)


CONTEXT = ServerContext(roots=("/srv/data",), domains=("api.github.com",))


@pytest.mark.parametrize(
    ("path", "tests", "holds"),
    [
        ("arguments.sql", {"equals": "SELECT 1"}, True),
        ("arguments.sql", {"equals": "select 1"}, False),
        ("arguments.amount", {"equals": 1500.0}, True),
        ("arguments.flag", {"equals": 1}, False),  # true is not the number 1
        ("arguments.flag", {"equals": True}, True),
        ("arguments.branch", {"in": ["main", "release/2.1"]}, True),
        ("arguments.branch", {"glob": "release/*"}, True),
        ("arguments.branch", {"glob": "main"}, False),
        ("arguments.branch", {"regex": r"^release/\d+\.\d+$"}, True),
        ("arguments.branch", {"regex": r"^main$"}, False),
        ("arguments.amount", {"gt": 1000}, True),
        ("arguments.amount", {"gt": 1500}, False),
        ("arguments.amount", {"gte": 1500}, True),
        ("arguments.amount", {"lt": 10}, False),
        ("arguments.price", {"lte": 20}, True),  # a numeric string is a number
        ("arguments.branch", {"gt": 0}, False),  # text is not
        ("arguments.flag", {"gt": 0}, False),  # nor is a boolean
        ("arguments.amount", {"gt": 1000, "lt": 2000}, True),
        ("arguments.amount", {"gt": 1000, "lt": 1200}, False),
        ("arguments.tags", {"equals": "b"}, True),  # a selected list is tested item by item
        ("arguments.steps[*].cmd", {"regex": "^rm "}, True),
        ("arguments.**.url", {"glob": "https://evil.example/*"}, True),
        ("arguments.missing", {"exists": False}, True),
        ("arguments.sql", {"exists": False}, False),
        ("arguments.sql", {"exists": True}, True),
        ("arguments.sql", {"exists": True, "equals": "nope"}, False),
    ],
)
def test_conditions(path: str, tests: dict[str, Any], holds: bool) -> None:
    condition = Condition.compile(path, ConditionConfig.model_validate(tests))
    assert condition.holds(ARGS, CONTEXT) is holds


def test_one_value_must_pass_every_test() -> None:
    # "ls" starts with l, "rm -rf /tmp/x" is long; no single value does both.
    config = ConditionConfig.model_validate({"regex": "^l", "glob": "*tmp*"})
    assert not Condition.compile("arguments.steps[*].cmd", config).holds(ARGS, CONTEXT)


@pytest.mark.parametrize(
    ("path", "tests", "context", "holds"),
    [
        ("arguments.files.path", {"outside_roots": True}, CONTEXT, True),
        ("arguments.files[0].path", {"outside_roots": True}, CONTEXT, False),
        ("arguments.files[0].path", {"outside_roots": False}, CONTEXT, True),
        ("arguments.files.path", {"outside_roots": True}, ServerContext(), False),  # no roots: never holds
        ("arguments.**.url", {"off_allowlist": True}, CONTEXT, True),
        ("arguments.**.url", {"off_allowlist": True}, ServerContext(domains=("evil.example",)), False),
        ("arguments.**.url", {"off_allowlist": True}, ServerContext(), False),
    ],
)
def test_context_predicates(path: str, tests: dict[str, Any], context: ServerContext, holds: bool) -> None:
    condition = Condition.compile(path, ConditionConfig.model_validate(tests))
    assert condition.holds(ARGS, context) is holds


@pytest.mark.parametrize(
    ("sql", "operations", "holds"),
    [
        ("DROP TABLE users", ["drop"], True),
        ("select 1; /* x */ dRoP table users", ["drop"], True),
        ("SELECT drop_date FROM orders WHERE id = 1", ["drop"], False),
        ("TRUNCATE orders", ["drop", "truncate"], True),
        ("not sql at all, just words: drop it", ["drop"], False),
        # issue 14: every statement, every layer, and the finer kinds under the names rules use
        ("BEGIN; DROP TABLE users; COMMIT;", ["drop"], True),
        ("USE prod; TRUNCATE users", ["truncate"], True),
        ("/*!50000 DROP TABLE users */", ["drop"], True),
        ("EXEC('DROP TABLE users')", ["drop"], True),
        ("DELETE FROM users", ["delete"], True),
        ("UPDATE users SET admin = true", ["update"], True),
        ("ALTER TABLE users DROP COLUMN email", ["alter"], True),
        ("COPY users TO STDOUT", ["copy"], True),
        ("DROP DATABASE prod", ["drop"], True),
        ("DELETE FROM users WHERE id = 4", ["drop", "truncate"], False),
    ],
)
def test_sql_predicate(sql: str, operations: list[str], holds: bool) -> None:
    condition = Condition.compile("arguments.**", ConditionConfig.model_validate({"sql": operations}))
    assert condition.holds({"query": {"text": sql}}, ServerContext()) is holds


def test_secret_predicate() -> None:
    condition = Condition.compile("arguments.**", ConditionConfig.model_validate({"secret": True}))
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    assert condition.holds({"body": {"note": key}}, ServerContext())
    assert not condition.holds({"body": {"note": "use ${GITHUB_TOKEN} here"}}, ServerContext())


def test_regex_runs_in_linear_time_on_hostile_input() -> None:
    # With a backtracking engine this pattern on this input would not finish; RE2 answers at once.
    condition = Condition.compile("arguments.name", ConditionConfig.model_validate({"regex": "^(a+)+$"}))
    assert not condition.holds({"name": "a" * 50_000 + "!"}, CONTEXT)
    assert condition.holds({"name": "a" * 50_000}, CONTEXT)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
ANY_TESTS = [
    ("arguments.**", {"equals": "x"}),
    ("arguments.**", {"in": [1, "a", True]}),
    ("arguments.*.a", {"glob": "a*"}),
    ("arguments.**", {"regex": "^[0-9]+$"}),
    ("arguments.**", {"gt": 0.5, "lte": 1e9}),
    ("arguments.**.q", {"sql": ["drop", "delete"]}),
    ("arguments.**", {"outside_roots": True}),
    ("arguments.**", {"off_allowlist": True}),
    ("arguments.**", {"secret": True}),
    ("arguments[0]", {"exists": True}),
]


@settings(max_examples=150, deadline=None)
@given(arguments=st.dictionaries(st.text(max_size=8), JSON, max_size=5))
def test_conditions_never_raise_on_any_json(arguments: dict[str, Any]) -> None:
    for path, tests in ANY_TESTS:
        condition = Condition.compile(path, ConditionConfig.model_validate(tests))
        assert condition.holds(arguments, CONTEXT) in (True, False)
