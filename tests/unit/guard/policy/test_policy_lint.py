"""Policy problems are caught when the config is loaded: each names file, line, key and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.cli.main import main
from bastion.config import ConfigError, load_config
from bastion.guard.policy.lint import policy_of

HEAD = """\
servers:
  crm: {command: "true"}
  db: {command: "true"}
policy:
"""


def write(folder: Path, policy: str, name: str = "bastion.yaml") -> Path:
    path = folder / name
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(policy), "  "), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("policy", "line", "key", "problem", "fix"),
    [
        ("profile: paranoid\n", 5, "policy.profile", "must be one of", "recommended"),
        ("rulez: []\n", 5, "policy.rulez", "unknown key `rulez`", "did you mean `rules`?"),
        (
            "rules:\n  - match: {tool: x}\n    action: deny\n    when_: {}\n",
            8,
            "policy.rules[0].when_",
            "unknown key `when_`",
            "did you mean `when`?",
        ),
        (
            "rules:\n  - match: {tools: x}\n    action: deny\n",
            6,
            "policy.rules[0].match.tools",
            "unknown key `tools`",
            "did you mean `tool`?",
        ),
        (
            "rules:\n  - match: {tool: x}\n    when: {arguments.a: {equal: 1}}\n    action: deny\n",
            7,
            "policy.rules[0].when.arguments.a.equal",
            "unknown key `equal`",
            "did you mean `equals`?",
        ),
        ("rules:\n  - match: {tool: x}\n", 6, "policy.rules[0]", "has no `action`", "add `action: allow`"),
        (
            "rules:\n  - {match: {tool: x}, sink: true, when: {arguments.a: {equals: b}}}\n",
            6,
            "policy.rules[0]",
            "sets `sink` and a `when`/`cel` condition",
            "a rule with only `match`",
        ),
        ("rules:\n  - {match: {tool: x}, sink: true, log: true}\n", 6, "policy.rules[0]", "but no `action`", "add"),
        ("rules:\n  - match: {tool: x}\n    action: block\n", 7, "policy.rules[0].action", "must be one of", "allow"),
        (
            "rules:\n  - match: {tool: 'delete_[abc'}\n    action: deny\n",
            6,
            "policy.rules[0].match.tool",
            "is not a valid glob: `[` is never closed",
            "close it with `]`",
        ),
        (
            "rules:\n  - match: {server: ''}\n    action: deny\n",
            6,
            "policy.rules[0].match.server",
            "is an empty pattern",
            "glob",
        ),
        (
            "rules:\n  - match: {tool: x}\n    when: {arguments.a: {regex: 'prod-(\\d+'}}\n    action: deny\n",
            7,
            "policy.rules[0].when.arguments.a.regex",
            "is not a valid regular expression: missing ): prod-(\\d+",
            "RE2 syntax",
        ),
        (
            "rules:\n  - match: {tool: x}\n    when: {arguments.a: {regex: '(?<=x)y'}}\n    action: deny\n",
            7,
            "policy.rules[0].when.arguments.a.regex",
            "is not a valid regular expression: invalid perl operator: (?<=",
            "no backreferences or lookaround",
        ),
        (
            "rules:\n  - match: {tool: x}\n    when: {sql: {equals: 1}}\n    action: deny\n",
            7,
            "policy.rules[0].when",
            "`sql` is not an argument path: it must start with `arguments`",
            "arguments.sql",
        ),
        (
            "rules:\n  - match: {tool: x}\n    when: {arguments.q: {sql: [dropp]}}\n    action: deny\n",
            7,
            "policy.rules[0].when.arguments.q.sql",
            "`dropp` is not an SQL operation",
            "drop",
        ),
        (
            "rules:\n  - match: {tool: x}\n    when: {arguments.q: {}}\n    action: deny\n",
            7,
            "policy.rules[0].when.arguments.q",
            "has no test",
            "add one",
        ),
        (
            "rules:\n  - match: {annotations: {readonly: true}}\n    action: deny\n",
            6,
            "policy.rules[0].match.annotations",
            "`readonly` is not a tool annotation",
            "readOnlyHint",
        ),
        (
            "rules:\n  - match: {tool: 'delete_*'}\n    action: ask\n"
            "  - match: {tool: delete_user}\n    action: deny\n",
            8,
            "policy.rules[1]",
            "rule rules[1] can never apply: rule rules[0] (bastion.yaml:6) comes first",
            "move it above rule rules[0]",
        ),
        (
            "rules:\n  - {name: a, match: {tool: x}, action: deny}\n  - {name: a, match: {tool: y}, action: deny}\n",
            7,
            "policy.rules[1].name",
            "the rule name `a` is also used at bastion.yaml:6",
            "give each rule its own name",
        ),
        (
            "catalogue: {sql.dropp: off}\n",
            5,
            "policy.catalogue.sql.dropp",
            "`sql.dropp` names no catalogue entry",
            "did you mean `sql.drop`?",
        ),
        ("catalogue: {sql.drop: maybe}\n", 5, "policy.catalogue.sql.drop", "must be one of", "deny"),
        (
            "servers: {crmm: {roots: [/srv]}}\n",
            5,
            "policy.servers.crmm",
            "names server `crmm`, which is not configured",
            "crm, db",
        ),
        (
            "servers: {crm: {roots: [srv/data]}}\n",
            5,
            "policy.servers.crm.roots",
            "`srv/data` is not an absolute path",
            "/srv/data",
        ),
        (
            "servers: {crm: {domains: ['https://x.example']}}\n",
            5,
            "policy.servers.crm.domains",
            "is not a domain name",
            "api.github.com",
        ),
        ("include: [nowhere.yaml]\n", 5, "policy.include[0]", "does not exist", "fix the path"),
    ],
)
def test_policy_errors(tmp_path: Path, policy: str, line: int, key: str, problem: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, policy))
    error = info.value
    assert (error.file, error.line, error.key) == (tmp_path / "bastion.yaml", line, key), str(error)
    assert problem in error.problem
    assert fix in error.fix


@pytest.mark.parametrize(
    ("earlier", "later", "unreachable"),
    [
        ({"tool": "delete_*"}, {"tool": "delete_user"}, True),
        ({"tool": "delete_*"}, {"tool": "delete_user*"}, True),
        ({}, {"server": "crm"}, True),
        ({"server": "crm"}, {"server": "crm", "tool": "x"}, True),
        ({"tool": ["a", "b"]}, {"tool": "b"}, True),
        ({"tool": "delete_user"}, {"tool": "delete_*"}, False),
        ({"tool": "*_user"}, {"tool": "delete_*"}, False),
        ({"server": "crm"}, {"tool": "x"}, False),
        ({"agent": "bot"}, {"role": "support"}, False),
        ({"annotations": {"readOnlyHint": True}}, {"tool": "x"}, False),
        ({"tool": "x"}, {"tool": "x", "annotations": {"readOnlyHint": True}}, True),
    ],
)
def test_unreachable_rules(
    tmp_path: Path, earlier: dict[str, object], later: dict[str, object], unreachable: bool
) -> None:
    import yaml

    policy = yaml.safe_dump({"rules": [{"match": earlier, "action": "ask"}, {"match": later, "action": "deny"}]})
    path = write(tmp_path, policy)
    if unreachable:
        with pytest.raises(ConfigError, match="can never apply"):
            load_config(path)
    else:
        load_config(path)


def test_conditions_decide_reachability(tmp_path: Path) -> None:
    conditional_first = """\
    rules:
      - {match: {tool: x}, when: {arguments.a: {equals: 1}}, action: ask}
      - {match: {tool: x}, action: deny}
    """
    load_config(write(tmp_path, conditional_first))
    same_conditions = """\
    rules:
      - {match: {tool: x}, action: ask}
      - {match: {tool: x}, when: {arguments.a: {equals: 1}}, action: deny}
    """
    with pytest.raises(ConfigError, match="can never apply"):
        load_config(write(tmp_path, same_conditions))


def test_errors_in_included_files_name_that_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "crm.yaml").write_text(
        "rules:\n  - match: {tool: x}\n    action: deny\n  - match: {tool: y}\n    acton: deny\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "include: [rules/crm.yaml]\n"))
    problems = {(e.file, e.line, e.key, e.problem) for e in (info.value, *info.value.also)}
    crm = tmp_path / "rules" / "crm.yaml"
    # The misspelt key is the error (with its "did you mean"); the missing action then follows from it.
    assert problems == {(crm, 5, "rules[1].acton", "unknown key `acton`")}


def test_included_rules_follow_the_files_rules_and_can_be_shadowed(tmp_path: Path) -> None:
    (tmp_path / "more.yaml").write_text("rules:\n  - {name: extra, match: {tool: y}, action: ask}\n", encoding="utf-8")
    config = load_config(
        write(tmp_path, "include: [more.yaml]\nrules:\n  - {name: first, match: {tool: x}, action: deny}\n")
    )
    policy = policy_of(config)
    assert [(r.id, r.file.name, r.line) for r in policy.rules] == [
        ("first", "bastion.yaml", 7),
        ("extra", "more.yaml", 2),
    ]
    (tmp_path / "more.yaml").write_text("rules:\n  - {match: {tool: x}, action: ask}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "bastion.yaml")
    assert (info.value.file, info.value.line) == (tmp_path / "more.yaml", 2)
    assert "rule more.yaml:rules[0] can never apply: rule first (bastion.yaml:7)" in info.value.problem


def test_every_problem_is_reported(tmp_path: Path) -> None:
    policy = """\
    rules:
      - {match: {tool: '[x'}, action: deny}
      - {match: {tool: y}, when: {arguments.a: {regex: '('}}, action: deny}
    """
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, policy))
    assert [e.line for e in (info.value, *info.value.also)] == [6, 7]


def test_lint_command(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write(tmp_path, "rules:\n  - {match: {tool: x}, action: deny}\n")
    done = runner.invoke(main, ["policy", "lint", "--config", str(good)])
    assert done.exit_code == 0, done.output
    assert "policy OK (profile recommended, 1 rule(s)" in done.output
    bad = write(
        tmp_path, "rules:\n  - {match: {tool: x}, action: deny}\n  - {match: {tool: x}, action: ask}\n", "bad.yaml"
    )
    done = runner.invoke(main, ["policy", "lint", "--config", str(bad)])
    assert done.exit_code == 2
    assert f"error: {bad}:7: policy.rules[1]: rule rules[1] can never apply" in done.output
    assert "Fix: move it above rule rules[0]" in done.output


def test_bad_cel_expression(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "rules:\n  - match: {tool: x}\n    cel: 'arguments.amount >'\n    action: deny\n"))
    error = info.value
    assert (error.line, error.key) == (7, "policy.rules[0].cel")
    assert error.problem.startswith("is not a valid CEL expression")
    assert "fix the expression" in error.fix


def test_cel_rules_shadow_only_with_the_same_expression(tmp_path: Path) -> None:
    different = "rules:\n  - {match: {tool: x}, cel: 'true', action: ask}\n  - {match: {tool: x}, action: deny}\n"
    load_config(write(tmp_path, different))
    same = (
        "rules:\n  - {match: {tool: x}, cel: 'true', action: ask}\n  - {match: {tool: x}, cel: 'true', action: deny}\n"
    )
    with pytest.raises(ConfigError, match="can never apply"):
        load_config(write(tmp_path, same))


def test_policy_of_a_config_narrowed_to_one_server(tmp_path: Path) -> None:
    # `bastion wrap --server db` keeps only `db`; the policy naming `crm` must still compile.
    config = load_config(write(tmp_path, "servers: {crm: {roots: [/srv/crm]}, db: {roots: [/srv/db]}}\n"))
    narrowed = config.model_copy(update={"servers": {"db": config.servers["db"]}})
    assert policy_of(narrowed).context_for("db").roots == ("/srv/db",)


def test_a_context_test_on_servers_without_that_context_is_an_error(tmp_path: Path) -> None:
    policy = "rules:\n  - {match: {server: crm}, when: {arguments.path: {outside_roots: true}}, action: deny}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, policy))
    assert info.value.line == 6
    assert "tests `outside_roots` on arguments.path, but policy.servers.crm.roots is not set" in info.value.problem
    assert info.value.fix == "set policy.servers.crm.roots, or remove the test"
    load_config(write(tmp_path, policy + "servers: {crm: {roots: [/srv/crm]}}\n"))
    # Unnamed or globbed servers may get their context elsewhere (or from `policy check` lines).
    load_config(
        write(
            tmp_path, "rules:\n  - {match: {server: 'c*'}, when: {arguments.u: {off_allowlist: true}}, action: deny}\n"
        )
    )
