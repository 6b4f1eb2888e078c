"""The engine: matching, precedence, profiles, the log flag and tool hiding, with a scripted catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bastion.guard.policy.catalogue import Entry, Finding, ScanContext, Severity
from bastion.guard.policy.config import CatalogueSetting, Profile, RuleConfig
from bastion.guard.policy.engine import PolicyEngine
from bastion.guard.policy.rules import Rule, Subject
from bastion.guard.policy.server_context import ServerContext
from bastion.model import Decision

DROP = Entry("test.drop", "test", "Drop a table", "A DROP.", Severity.CRITICAL, Decision.DENY)
EXPORT = Entry("test.export", "test", "Bulk export", "Everything.", Severity.MEDIUM, Decision.ASK)
NOTE = Entry("test.note", "test", "Noteworthy", "Worth a look.", Severity.LOW, Decision.ASK)


def scripted_scan(tool: str, arguments: Mapping[str, Any], context: ScanContext) -> list[Finding]:
    """Finds the entries named in `arguments["finds"]`, as a stand-in for the real catalogue."""
    entries = {e.id: e for e in (DROP, EXPORT, NOTE)}
    return [Finding(entries[name], f"saw {name}", "arguments.finds") for name in arguments.get("finds", [])]


def rules(*configs: dict[str, Any]) -> list[Rule]:
    return [
        Rule.compile(
            RuleConfig.model_validate(c),
            i,
            file=Path("bastion.yaml"),
            line=10 + i,
            loc=("policy", "rules", i),
            prefix="",
        )
        for i, c in enumerate(configs)
    ]


def engine(*configs: dict[str, Any], profile: Profile = Profile.RECOMMENDED, **settings: str) -> PolicyEngine:
    overrides = {key.replace("_", "."): CatalogueSetting(value) for key, value in settings.items()}
    return PolicyEngine(rules(*configs), profile=profile, catalogue_settings=overrides, scanner=scripted_scan)


def subject(
    tool: str = "run_query",
    server: str = "db",
    agent: str = "bot",
    roles: frozenset[str] = frozenset(),
    annotations: Mapping[str, Any] | None = None,
) -> Subject:
    return Subject(agent, roles, server, tool, annotations)


def decide(e: PolicyEngine, s: Subject | None = None, **arguments: Any) -> tuple[Decision, str, bool]:
    result = e.decide(s or subject(), arguments, ServerContext())
    return result.verdict.decision, result.decided_by, result.verdict.log


@pytest.mark.parametrize(
    ("match", "who", "matches"),
    [
        ({}, subject(), True),
        ({"tool": "run_*"}, subject(), True),
        ({"tool": ["delete_*", "drop_*"]}, subject(), False),
        ({"tool": "Run_query"}, subject(), False),  # globs are case-sensitive
        ({"server": "db"}, subject(), True),
        ({"server": "crm"}, subject(), False),
        ({"agent": "b?t"}, subject(), True),
        ({"agent": "support-*"}, subject(), False),
        ({"role": "support"}, subject(roles=frozenset({"support", "ops"})), True),
        ({"role": "support"}, subject(), False),
        ({"annotations": {"readOnlyHint": True}}, subject(annotations={"readOnlyHint": True}), True),
        ({"annotations": {"readOnlyHint": True}}, subject(annotations={"readOnlyHint": False}), False),
        # Undeclared hints take the MCP defaults (readOnly false, destructive true) ...
        ({"annotations": {"destructiveHint": True}}, subject(annotations={}), True),
        ({"annotations": {"readOnlyHint": False}}, subject(annotations={}), True),
        # ... but a tool the server does not list has no annotations at all.
        ({"annotations": {"readOnlyHint": False}}, subject(annotations=None), False),
        ({"server": "db", "tool": "run_query", "agent": "bot"}, subject(), True),
        ({"server": "db", "tool": "run_query", "agent": "other"}, subject(), False),
    ],
)
def test_static_matching(match: dict[str, Any], who: Subject, matches: bool) -> None:
    e = engine({"match": match, "action": "deny"})
    assert (decide(e, who)[0] is Decision.DENY) is matches


def test_first_matching_rule_wins() -> None:
    e = engine(
        {"name": "allow-reads", "match": {"tool": "read_*"}, "action": "allow"},
        {"name": "deny-all", "match": {}, "action": "deny"},
    )
    assert decide(e, subject("read_file"))[:2] == (Decision.ALLOW, "rule:allow-reads")
    assert decide(e, subject("write_file"))[:2] == (Decision.DENY, "rule:deny-all")


def test_when_conditions_decide_whether_a_rule_matches() -> None:
    e = engine({"name": "big", "match": {"tool": "refund"}, "when": {"arguments.amount": {"gt": 100}}, "action": "ask"})
    assert decide(e, subject("refund"), amount=500)[:2] == (Decision.ASK, "rule:big")
    assert decide(e, subject("refund"), amount=50)[:2] == (Decision.ALLOW, "profile:recommended")


@pytest.mark.parametrize(
    ("rule_action", "finds", "decision", "decided_by"),
    [
        (None, [], Decision.ALLOW, "profile:recommended"),
        (None, ["test.drop"], Decision.DENY, "catalogue:test.drop"),
        (None, ["test.export"], Decision.ASK, "catalogue:test.export"),
        (None, ["test.export", "test.drop"], Decision.DENY, "catalogue:test.drop"),  # worst wins
        ("allow", ["test.drop"], Decision.DENY, "catalogue:test.drop"),  # an allow rule does not hide a danger
        ("ask", ["test.drop"], Decision.DENY, "catalogue:test.drop"),
        ("deny", ["test.export"], Decision.DENY, "rule:r"),  # the rule beats the catalogue on a tie or worse
        ("ask", ["test.export"], Decision.ASK, "rule:r"),
        ("allow", [], Decision.ALLOW, "rule:r"),
    ],
)
def test_precedence(rule_action: str | None, finds: list[str], decision: Decision, decided_by: str) -> None:
    configs = [{"name": "r", "match": {"tool": "run_query"}, "action": rule_action}] if rule_action else []
    assert decide(engine(*configs), finds=finds)[:2] == (decision, decided_by)


def test_on_a_tie_the_more_severe_finding_names_the_verdict() -> None:
    e = engine()
    assert decide(e, finds=["test.note", "test.export"])[:2] == (Decision.ASK, "catalogue:test.export")


@pytest.mark.parametrize(
    ("settings", "finds", "decision", "decided_by", "log"),
    [
        ({"test_drop": "off"}, ["test.drop"], Decision.ALLOW, "profile:recommended", False),
        ({"test_drop": "log"}, ["test.drop"], Decision.ALLOW, "catalogue:test.drop", True),
        ({"test_drop": "ask"}, ["test.drop"], Decision.ASK, "catalogue:test.drop", False),
        ({"test_export": "deny"}, ["test.export"], Decision.DENY, "catalogue:test.export", False),
        ({"test_*": "off"}, ["test.drop", "test.export"], Decision.ALLOW, "profile:recommended", False),
        ({"test_*": "off", "test_drop": "deny"}, ["test.drop"], Decision.DENY, "catalogue:test.drop", False),
    ],
)
def test_catalogue_overrides(
    settings: dict[str, str], finds: list[str], decision: Decision, decided_by: str, log: bool
) -> None:
    assert decide(engine(**settings), finds=finds) == (decision, decided_by, log)


def test_skip_catalogue_exempts_only_the_named_entries() -> None:
    e = engine({"name": "known", "match": {"tool": "run_query"}, "action": "allow", "skip_catalogue": ["test.export"]})
    assert decide(e, finds=["test.export"])[:2] == (Decision.ALLOW, "rule:known")
    assert decide(e, finds=["test.export", "test.drop"])[:2] == (Decision.DENY, "catalogue:test.drop")


def test_log_flag_marks_without_blocking() -> None:
    e = engine({"name": "watch", "match": {"tool": "run_query"}, "action": "allow", "log": True})
    assert decide(e) == (Decision.ALLOW, "rule:watch", True)
    assert decide(e, subject("other")) == (Decision.ALLOW, "profile:recommended", False)


@pytest.mark.parametrize(
    ("configs", "tool", "finds", "decision", "decided_by"),
    [
        ([], "run_query", [], Decision.ASK, "profile:strict"),  # unknown tool: held
        (
            [{"name": "ok", "match": {"tool": "run_query"}, "action": "allow"}],
            "run_query",
            [],
            Decision.ALLOW,
            "rule:ok",
        ),
        (
            [{"name": "ok", "match": {"tool": "run_query"}, "action": "allow"}],
            "other",
            [],
            Decision.ASK,
            "profile:strict",
        ),
        (
            [{"name": "ok", "match": {"tool": "run_query"}, "action": "allow"}],
            "run_query",
            ["test.drop"],
            Decision.DENY,
            "catalogue:test.drop",
        ),
        ([], "run_query", ["test.drop"], Decision.DENY, "catalogue:test.drop"),
        ([{"name": "no", "match": {}, "action": "deny"}], "run_query", [], Decision.DENY, "rule:no"),
    ],
)
def test_strict_profile(
    configs: list[dict[str, Any]], tool: str, finds: list[str], decision: Decision, decided_by: str
) -> None:
    assert decide(engine(*configs, profile=Profile.STRICT), subject(tool), finds=finds)[:2] == (decision, decided_by)


def test_audit_only_blocks_nothing_and_logs_what_it_would_have() -> None:
    e = engine({"name": "no-deletes", "match": {"tool": "delete_*"}, "action": "deny"}, profile=Profile.AUDIT_ONLY)
    result = e.decide(subject("delete_user"), {}, ServerContext())
    assert (result.verdict.decision, result.verdict.log, result.decided_by) == (Decision.ALLOW, True, "rule:no-deletes")
    assert result.verdict.reason.startswith("audit-only profile: would deny: rule no-deletes")
    assert decide(e, finds=["test.export"]) == (Decision.ALLOW, "catalogue:test.export", True)
    assert decide(e) == (Decision.ALLOW, "profile:audit-only", False)
    assert e.hides(subject("delete_user")) is None


def test_verdict_names_rule_file_line_and_reason() -> None:
    e = engine(
        {"name": "crm-deletes", "match": {"server": "crm", "tool": "delete_*"}, "action": "ask"},
        {"match": {"tool": "x"}, "action": "deny", "reason": "x is retired"},
    )
    verdict = e.decide(subject("delete_user", "crm"), {}, ServerContext()).verdict
    assert verdict.check == "policy/rule:crm-deletes"
    assert verdict.reason.startswith("rule crm-deletes (bastion.yaml:10): holds delete_user on crm for approval")
    unnamed = e.decide(subject("x"), {}, ServerContext()).verdict
    assert (unnamed.check, unnamed.reason) == ("policy/rule:rules[1]", "rule rules[1] (bastion.yaml:11): x is retired")
    found = e.decide(subject(), {"finds": ["test.drop"]}, ServerContext()).verdict
    assert found.check == "policy/catalogue:test.drop"
    assert "Drop a table (test.drop, critical): saw test.drop at arguments.finds" in found.reason


@pytest.mark.parametrize(
    ("configs", "who", "hidden_by"),
    [
        ([{"name": "h", "match": {"tool": "delete_*"}, "action": "deny"}], subject("delete_user"), "h"),
        ([{"name": "h", "match": {"tool": "delete_*"}, "action": "deny"}], subject("read_user"), None),
        ([{"name": "h", "match": {"agent": "other"}, "action": "deny"}], subject("delete_user"), None),
        # A conditional deny leaves other calls allowed: the tool stays visible ...
        ([{"match": {"tool": "t"}, "when": {"arguments.a": {"equals": 1}}, "action": "deny"}], subject("t"), None),
        # ... unless an unconditional deny follows it.
        (
            [
                {"match": {"tool": "t"}, "when": {"arguments.a": {"equals": 1}}, "action": "deny"},
                {"name": "all", "match": {"tool": "t"}, "action": "deny"},
            ],
            subject("t"),
            "all",
        ),
        # An earlier rule that may allow some calls keeps it visible.
        (
            [
                {"match": {"tool": "t"}, "when": {"arguments.a": {"equals": 1}}, "action": "allow"},
                {"name": "all", "match": {"tool": "t"}, "action": "deny"},
            ],
            subject("t"),
            None,
        ),
        ([{"match": {"tool": "t"}, "action": "ask"}], subject("t"), None),  # held, not hidden
        (
            [{"name": "w", "match": {"annotations": {"readOnlyHint": False}}, "action": "deny"}],
            subject("t", annotations={"readOnlyHint": False}),
            "w",
        ),
    ],
)
def test_hiding(configs: list[dict[str, Any]], who: Subject, hidden_by: str | None) -> None:
    rule = engine(*configs).hides(who)
    assert (rule.id if rule is not None else None) == hidden_by


def test_explain_lists_every_rule_and_finding() -> None:
    e = engine(
        {"name": "a", "match": {"server": "crm"}, "action": "deny"},
        {"name": "b", "match": {"tool": "run_query"}, "when": {"arguments.n": {"gt": 5}}, "action": "ask"},
        {"name": "c", "match": {"tool": "run_query"}, "action": "allow"},
        {"name": "d", "match": {}, "action": "deny"},
    )
    result = e.decide(subject(), {"n": 1, "finds": ["test.export"]}, ServerContext(), explain=True)
    steps = [(c.kind, c.id, c.applies) for c in result.considered]
    assert steps == [
        ("rule", "a", False),
        ("rule", "b", False),
        ("rule", "c", True),
        ("rule", "d", False),
        ("catalogue", "test.export", True),
        ("profile", "recommended", True),
    ]
    whys = [c.why for c in result.considered]
    assert "server 'db' is not 'crm'" in whys[0]
    assert "condition arguments.n {gt: 5.0} does not hold" in whys[1]
    assert "not tried" in whys[3]
    assert result.decided_by == "catalogue:test.export"


def test_cel_expressions() -> None:
    e = engine(
        {
            "name": "over-total",
            "match": {"tool": "refund"},
            "cel": "arguments.amount > arguments.order_total && 'finance' in roles == false",
            "action": "deny",
        },
        {"name": "finance-ok", "match": {"tool": "transfer"}, "cel": "'finance' in roles", "action": "allow"},
    )
    refund = subject("refund")
    assert decide(e, refund, amount=50, order_total=40)[:2] == (Decision.DENY, "rule:over-total")
    assert decide(e, refund, amount=30, order_total=40)[:2] == (Decision.ALLOW, "profile:recommended")
    finance = subject("refund", roles=frozenset({"finance"}))
    assert decide(e, finance, amount=50, order_total=40)[:2] == (Decision.ALLOW, "profile:recommended")
    # An evaluation error (no order_total) counts as true for a deny rule: errors never open a door ...
    assert decide(e, refund, amount=50)[:2] == (Decision.DENY, "rule:over-total")
    # ... and as false for an allow rule.
    assert decide(e, subject("transfer", roles=frozenset({"finance"})))[:2] == (Decision.ALLOW, "rule:finance-ok")
    explained = e.decide(subject("refund"), {"amount": 1}, ServerContext(), explain=True)
    assert explained.considered[0].applies is True


def test_cel_rules_are_conditional_for_hiding_and_lint() -> None:
    e = engine({"name": "c", "match": {"tool": "t"}, "cel": "arguments.a == 1", "action": "deny"})
    assert e.hides(subject("t")) is None


def test_odd_declared_annotations_match_nothing_and_do_not_break_the_cache() -> None:
    e = engine({"name": "ro", "match": {"annotations": {"readOnlyHint": True}}, "action": "allow", "log": True})
    odd = subject(annotations={"readOnlyHint": ["yes"], "destructiveHint": {"a": 1}})
    assert decide(e, odd) == (Decision.ALLOW, "profile:recommended", False)
    assert e.hides(odd) is None
