"""The policy engine: rules, catalogue findings and the profile, combined into one verdict.

Precedence (docs/policy.md#precedence):

1. Rules are tried in order (`policy.rules`, then each `policy.include` file in order); the
   first rule whose `match` and `when` both hold is the matching rule. Later rules are not tried.
2. The catalogue scans the arguments; each finding's action is its entry's default, or the
   override in `policy.catalogue` (`off` drops it). The matching rule's `skip_catalogue`
   drops the entries it names.
3. The most restrictive candidate decides: deny > ask > allow. On a tie the matching rule
   decides before catalogue findings, and a more severe finding before a less severe one.
4. `strict`: a call with no matching `allow` rule is at least held (ask), by `profile:strict`.
5. `audit-only`: whatever would be denied or held is allowed instead, with the log flag.

The log flag is set when the matching rule has `log: true`, when an entry set to `log` is
found, and on every verdict `audit-only` turns into an allow.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bastion.guard.policy.conditions import Condition
from bastion.guard.policy.config import CatalogueSetting, Profile
from bastion.guard.policy.rules import Rule, Subject, annotation_key
from bastion.guard.policy.server_context import ServerContext
from bastion.model import Decision, Verdict

if TYPE_CHECKING:
    from bastion.guard.policy.catalogue import Entry, Finding, ScanContext
    from bastion.guard.policy.cel import CelExpression

_SUBJECT_CACHE_SIZE = 4096
_RANK = {Decision.ALLOW: 0, Decision.ASK: 1, Decision.DENY: 2}
_SETTING_DECISION = {CatalogueSetting.DENY: Decision.DENY, CatalogueSetting.ASK: Decision.ASK}


class Scanner(Protocol):
    def __call__(self, tool: str, arguments: Mapping[str, Any], context: ScanContext) -> list[Finding]: ...


@dataclass(frozen=True, slots=True)
class Considered:
    """One step of an explanation: a rule or catalogue entry, whether it applied, and why."""

    kind: str
    """"rule", "catalogue" or "profile"."""
    id: str
    applies: bool
    why: str
    decision: Decision | None = None


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The verdict, the id of what decided it (`rule:...`, `catalogue:...`, `profile:...`), and the trace."""

    verdict: Verdict
    decided_by: str
    considered: tuple[Considered, ...]
    findings: tuple[Finding, ...]


@dataclass(slots=True)
class _Candidate:
    decision: Decision
    decided_by: str
    reason: str
    log: bool
    order: int


class PolicyEngine:
    """Decides tool calls from compiled rules, the catalogue and a profile. Stateless and thread-safe."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        profile: Profile = Profile.RECOMMENDED,
        catalogue_settings: Mapping[str, CatalogueSetting] | None = None,
        scanner: Scanner | None = None,
    ) -> None:
        # The catalogue's parsers are imported by the first call judged (`_catalogue_scanner`), not here:
        # loading a config needs none, and `bastion wrap` answers `initialize` without them.
        from bastion.guard.policy.catalogue.base import ScanContext

        self.rules = tuple(rules)
        self.profile = profile
        self._settings = dict(catalogue_settings or {})
        self._scan: Scanner | None = scanner
        self._scan_context = ScanContext
        self._actions: dict[str, CatalogueSetting] = {}
        self._by_subject: dict[tuple[Any, ...], tuple[Rule, ...]] = {}
        self._contexts: dict[tuple[Any, ...], ScanContext] = {}
        self._default_by = f"profile:{profile}"
        self._default_allow = Verdict(
            Decision.ALLOW, "no rule or catalogue entry applies", check=f"policy/{self._default_by}"
        )

    def _catalogue_scanner(self) -> Scanner:
        """The catalogue's scanner, imported by the first call judged (its parsers are most of the catalogue)."""
        from bastion.guard.policy.catalogue.scanner import scan

        self._scan = scan
        return scan

    def entry_setting(self, entry: Entry) -> CatalogueSetting:
        """What the catalogue entry does here: the exact override, else the longest matching glob, else its default."""
        setting = self._actions.get(entry.id)
        if setting is None:
            setting = self._settings.get(entry.id) or _glob_setting(self._settings, entry.id)
            if setting is None:
                setting = CatalogueSetting.ASK if entry.default is Decision.ASK else CatalogueSetting.DENY
                if entry.default is Decision.ALLOW:
                    setting = CatalogueSetting.LOG
            self._actions[entry.id] = setting
        return setting

    def decide(
        self, subject: Subject, arguments: Mapping[str, Any], context: ServerContext, *, explain: bool = False
    ) -> PolicyDecision:
        """The verdict on one call. With `explain`, the trace lists every rule and finding considered."""
        considered: list[Considered] = []
        rule = self._first_rule(subject, arguments, context, considered if explain else None)
        candidates: list[_Candidate] = []
        if rule is not None:
            candidates.append(_rule_candidate(rule, subject))
        findings = (self._scan or self._catalogue_scanner())(
            subject.tool, arguments, self._context_for(subject, context)
        )
        for order, finding in enumerate(findings, start=1):
            candidate = self._finding_candidate(finding, rule, order, considered if explain else None)
            if candidate is not None:
                candidates.append(candidate)
        if self.profile is Profile.STRICT and (rule is None or rule.action != "allow"):
            reason = f"tool {subject.tool!r} on server {subject.server!r} has no allow rule (strict profile)"
            candidates.append(_Candidate(Decision.ASK, "profile:strict", reason, False, 10**9))
        best = _most_restrictive(candidates)
        if best is None:
            verdict, decided_by = self._default_allow, self._default_by
        else:
            log = best.log or any(c.log for c in candidates if c.decision is Decision.ALLOW)
            verdict = Verdict(best.decision, best.reason, check=f"policy/{best.decided_by}", log=log)
            decided_by = best.decided_by
        if self.profile is Profile.AUDIT_ONLY and not verdict.allowed:
            reason = f"audit-only profile: would {verdict.decision}: {verdict.reason}"
            verdict = Verdict(Decision.ALLOW, reason, check=verdict.check, log=True)
        if explain:
            considered.append(Considered("profile", str(self.profile), True, _profile_note(self.profile)))
        return PolicyDecision(verdict, decided_by, tuple(considered), tuple(findings))

    def _context_for(self, subject: Subject, context: ServerContext) -> ScanContext:
        """The scan context of a call (one object per server, settings and hints: made once, then reused)."""
        read_only, destructive = _hint(subject, "readOnlyHint"), _hint(subject, "destructiveHint")
        key = (context.roots, context.domains, subject.server, read_only, destructive)
        try:
            found, cacheable = self._contexts.get(key), True
        except TypeError:  # roots or domains given as lists: not cacheable, still judged
            found, cacheable = None, False
        if found is None:
            found = self._scan_context(
                allowed_roots=context.roots,
                allowed_domains=context.domains,
                server=subject.server,
                read_only_hint=read_only,
                destructive_hint=destructive,
            )
            if cacheable:
                if len(self._contexts) >= _SUBJECT_CACHE_SIZE:
                    self._contexts.clear()
                self._contexts[key] = found
        return found

    def _candidate_rules(self, subject: Subject) -> tuple[Rule, ...]:
        """The rules whose `match` holds for `subject`, in order; cached per subject."""
        key = (subject.agent, subject.roles, subject.server, subject.tool, annotation_key(subject.annotations))
        found = self._by_subject.get(key)
        if found is None:
            if len(self._by_subject) >= _SUBJECT_CACHE_SIZE:
                self._by_subject.clear()
            found = tuple(rule for rule in self.rules if rule.matches_statically(subject))
            self._by_subject[key] = found
        return found

    def _first_rule(
        self,
        subject: Subject,
        arguments: Mapping[str, Any],
        context: ServerContext,
        considered: list[Considered] | None,
    ) -> Rule | None:
        if considered is None:
            for rule in self._candidate_rules(subject):
                if rule.failing_condition(subject, arguments, context) is None:
                    return rule
            return None
        for index, rule in enumerate(self.rules):
            mismatch = rule.static_mismatch(subject)
            if mismatch is None:
                failing = rule.failing_condition(subject, arguments, context)
                if failing is None:
                    if considered is not None:
                        why = f"matches ({rule.describe_match()}) at {rule.where}: action {rule.action}"
                        considered.append(Considered("rule", rule.id, True, why, Decision(rule.action)))
                        for later in self.rules[index + 1 :]:
                            considered.append(Considered("rule", later.id, False, "not tried: an earlier rule matched"))
                    return rule
                mismatch = _not_holding(rule, failing, subject, arguments, context)
            if considered is not None:
                considered.append(Considered("rule", rule.id, False, mismatch))
        return None

    def _finding_candidate(
        self, finding: Finding, rule: Rule | None, order: int, considered: list[Considered] | None
    ) -> _Candidate | None:
        entry = finding.entry
        where = f" at {finding.path}" if finding.path and finding.path not in finding.reason else ""
        skipped = rule is not None and any(fnmatch.fnmatchcase(entry.id, p) for p in rule.skip_catalogue)
        setting = self.entry_setting(entry)
        if skipped or setting is CatalogueSetting.OFF:
            if considered is not None:
                why = f"skipped by rule {rule.id}" if skipped and rule is not None else "turned off in policy.catalogue"
                considered.append(Considered("catalogue", entry.id, False, f"{finding.reason}{where}; {why}"))
            return None
        decision = _SETTING_DECISION.get(setting, Decision.ALLOW)
        reason = f"{entry.title} ({entry.id}, {entry.severity}): {finding.reason}{where}"
        if considered is not None:
            considered.append(Considered("catalogue", entry.id, True, reason, decision))
        # On a tie the more severe entry names the verdict, then the first found.
        rank = (3 - entry.severity.rank) * 100_000 + order
        return _Candidate(decision, f"catalogue:{entry.id}", reason, setting is CatalogueSetting.LOG, rank)

    def hides(self, subject: Subject) -> Rule | None:
        """The rule that denies every call of this tool for this agent (so `tools/list` hides it), or None.

        Rules are read in order: a rule whose static match holds and that has no conditions
        decides every call that reaches it; rules with conditions that would deny anyway do
        not change that; any other rule that may match means some calls are not denied.
        """
        if self.profile is Profile.AUDIT_ONLY:
            return None
        for rule in self._candidate_rules(subject):
            if rule.action != "deny":
                return None
            if not rule.conditional:
                return rule
        return None


def _not_holding(
    rule: Rule,
    failing: Condition | CelExpression,
    subject: Subject,
    arguments: Mapping[str, Any],
    context: ServerContext,
) -> str:
    if isinstance(failing, Condition):
        return f"condition {failing.describe()} does not hold"
    _, error = rule.cel_holds(subject, arguments, context)
    why = f" (it failed: {error}; counted as false for an allow rule)" if error else ""
    return f"cel {failing.text!r} is false{why}"


def _hint(subject: Subject, name: str) -> bool | None:
    if subject.annotations is None:
        return None
    value = subject.annotations.get(name)
    return value if isinstance(value, bool) else None


def _glob_setting(settings: Mapping[str, CatalogueSetting], entry_id: str) -> CatalogueSetting | None:
    matching = [pattern for pattern in settings if fnmatch.fnmatchcase(entry_id, pattern)]
    if not matching:
        return None
    return settings[max(matching, key=lambda pattern: (len(pattern), pattern))]


def _rule_candidate(rule: Rule, subject: Subject) -> _Candidate:
    decision = Decision(rule.action)
    what = f"{subject.tool} on {subject.server}"
    verb = {"allow": f"allows {what}", "deny": f"denies {what}", "ask": f"holds {what} for approval"}[rule.action]
    text = rule.reason or f"{verb} (it matches {rule.describe_match()})"
    reason = f"rule {rule.id} ({rule.where}): {text}"
    return _Candidate(decision, f"rule:{rule.id}", reason, rule.log, 0)


def _most_restrictive(candidates: Sequence[_Candidate]) -> _Candidate | None:
    if not candidates:
        return None
    return min(candidates, key=lambda c: (-_RANK[c.decision], c.order))


def _profile_note(profile: Profile) -> str:
    return {
        Profile.RECOMMENDED: "recommended: catalogue entries act with their defaults; other calls are allowed",
        Profile.STRICT: "strict: calls without a matching allow rule are held for approval",
        Profile.AUDIT_ONLY: "audit-only: nothing is blocked; what would be is allowed and logged",
    }[profile]
