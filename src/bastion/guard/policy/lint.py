"""Checking and compiling a `policy:` section: included files, catalogue ids, servers, unreachable rules.

`compile_policy` is what config loading, `bastion up` and `bastion policy lint` call: it
returns a `CompiledPolicy`, or raises one `ConfigError` (more in `.also`) naming file, line,
key and fix.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from bastion.config_errors import ConfigError, KeyLines, Loc, format_key, from_validation_error, parse_yaml
from bastion.guard.policy.config import (
    INCLUDE_MODELS_AT,
    CatalogueSetting,
    IncludedRules,
    MatchConfig,
    PolicyConfig,
    Profile,
)
from bastion.guard.policy.rules import Rule
from bastion.guard.policy.server_context import ServerContext


class _HasRoles(Protocol):
    @property
    def roles(self) -> frozenset[str]: ...


class ConfiguredPolicy(Protocol):
    """What `policy_of` reads of a loaded bastion.yaml (`BastionConfig`), so this room need not import it."""

    @property
    def source(self) -> Path: ...

    @property
    def policy(self) -> PolicyConfig: ...

    @property
    def agents(self) -> Mapping[str, _HasRoles]: ...

    @property
    def servers(self) -> Mapping[str, object]: ...


_NO_SERVER_CONTEXT = ServerContext()
"""The context of a server with no roots or domains configured (frozen, so shared)."""


@dataclass(frozen=True)
class CompiledPolicy:
    """A checked policy, ready for `PolicyEngine`."""

    profile: Profile = Profile.RECOMMENDED
    rules: tuple[Rule, ...] = ()
    catalogue: Mapping[str, CatalogueSetting] = field(default_factory=dict)
    servers: Mapping[str, ServerContext] = field(default_factory=dict)
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    sinks: tuple[Rule, ...] = ()
    """The rules that set `sink` (also those that only do that, which are not in `rules`)."""

    def context_for(self, server: str) -> ServerContext:
        """The server's configured roots and domains; an empty context for a server not configured."""
        context = self.servers.get(server)
        return _NO_SERVER_CONTEXT if context is None else context


def compile_policy(
    policy: PolicyConfig,
    *,
    source: Path,
    lines: KeyLines | None = None,
    servers: Collection[str] | None = None,
    roles: Mapping[str, frozenset[str]] | None = None,
    sandboxed: Mapping[str, tuple[str, ...]] | None = None,
) -> CompiledPolicy:
    """Check `policy` (from the file `source`, with key `lines`) and compile it.

    `servers` are the configured server names (None: do not check names against them);
    `sandboxed` the sandbox `allow_domains` of servers, which stand in for policy `domains` they lack.
    """
    lines = lines or KeyLines()
    problems: list[ConfigError] = []
    rules: list[Rule] = [
        Rule.compile(config, index, file=source, line=lines.line_of(loc), loc=loc, prefix="")
        for index, config in enumerate(policy.rules)
        for loc in [("policy", "rules", index)]
    ]
    for position, path in enumerate(policy.include):
        loc = ("policy", "include", position)
        try:
            rules += _included_rules(path, source)
        except ConfigError as exc:
            if exc.file == _resolve(path, source):
                problems += [exc, *exc.also]
            else:
                problems.append(ConfigError(source, format_key(loc), exc.problem, exc.fix, line=lines.line_of(loc)))
    problems += _duplicate_names(rules, lines)
    sinks = tuple(rule for rule in rules if rule.sink is not None)
    rules = [rule for rule in rules if rule.action]  # a rule that only marks sinks decides nothing
    problems += _unreachable(rules)
    problems += _catalogue_keys(policy.catalogue, source, lines)
    if servers is not None:
        problems += _server_names(policy, servers, source, lines)
        problems += _context_never_set(rules, policy, sandboxed or {})
    if problems:
        problems.sort(key=lambda e: (str(e.file) != str(source), str(e.file), e.line or 0))
        first, *rest = problems
        raise ConfigError(first.file, first.key, first.problem, first.fix, line=first.line, also=rest)
    contexts = {name: ServerContext(tuple(s.roots), tuple(s.domains)) for name, s in policy.servers.items()}
    return CompiledPolicy(policy.profile, tuple(rules), dict(policy.catalogue), contexts, dict(roles or {}), sinks)


def _resolve(path: Path, source: Path) -> Path:
    return (source.parent / path.expanduser()).resolve()


def _included_rules(path: Path, source: Path) -> list[Rule]:
    file = _resolve(path, source)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(source, "", f"included rule file {file} does not exist", "fix the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"included rule file {file} cannot be read ({exc})", "fix the file") from None
    data, lines = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise ConfigError(file, "", "must be a mapping with a `rules:` list", "write `rules:` then the rules as a list")
    try:
        included = IncludedRules.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(
            exc, file=file, lines=lines, models_at=INCLUDE_MODELS_AT, yaml_path=lambda loc: loc
        ) from None
    prefix = f"{file.name}:"
    return [
        Rule.compile(
            config, index, file=file, line=lines.line_of(("rules", index)), loc=("rules", index), prefix=prefix
        )
        for index, config in enumerate(included.rules)
    ]


def _error(rule: Rule, key: str, problem: str, fix: str) -> ConfigError:
    loc: Loc = (*rule.loc, key) if key else rule.loc
    return ConfigError(rule.file, format_key(loc), problem, fix, line=rule.line)


def _duplicate_names(rules: Iterable[Rule], lines: KeyLines) -> list[ConfigError]:
    seen: dict[str, Rule] = {}
    problems = []
    for rule in rules:
        if rule.id in seen:
            first = seen[rule.id]
            problems.append(
                _error(
                    rule,
                    "name",
                    f"the rule name `{rule.id}` is also used at {first.where}",
                    "give each rule its own name",
                )
            )
        else:
            seen[rule.id] = rule
    return problems


def _covers(broad: tuple[str, ...] | None, narrow: tuple[str, ...] | None) -> bool:
    """Whether every name `narrow` matches is matched by `broad` (None: anything)."""
    if broad is None:
        return True
    if narrow is None:
        return "*" in broad
    return all(any(_pattern_covers(b, n) for b in broad) for n in narrow)


def _pattern_covers(broad: str, narrow: str) -> bool:
    if broad == narrow or broad == "*":
        return True
    if not any(c in narrow for c in "*?["):
        return fnmatch.fnmatchcase(narrow, broad)
    # A glob covers another when it is a plain prefix + `*` and the other starts with that prefix.
    prefix = broad[:-1]
    return broad.endswith("*") and not any(c in prefix for c in "*?[") and narrow.startswith(prefix)


def _match_covers(broad: MatchConfig, narrow: MatchConfig) -> bool:
    if not all(_covers(getattr(broad, key), getattr(narrow, key)) for key in ("agent", "role", "server", "tool")):
        return False
    narrow_hints = narrow.annotations or {}
    return all(narrow_hints.get(hint) is value for hint, value in (broad.annotations or {}).items())


def _unreachable(rules: list[Rule]) -> list[ConfigError]:
    problems = []
    for later_index, later in enumerate(rules):
        for earlier in rules[:later_index]:
            same_conditions = {c.path: c.source for c in earlier.conditions}.items() <= {
                c.path: c.source for c in later.conditions
            }.items()
            same_cel = earlier.cel is None or (later.cel is not None and earlier.cel.text == later.cel.text)
            if same_conditions and same_cel and _match_covers(earlier.match, later.match):
                problems.append(
                    _error(
                        later,
                        "",
                        f"rule {later.id} can never apply: rule {earlier.id} ({earlier.where}) comes first "
                        "and matches every call it matches",
                        f"move it above rule {earlier.id}, narrow rule {earlier.id}, or remove it",
                    )
                )
                break
    return problems


def _context_never_set(
    rules: list[Rule], policy: PolicyConfig, sandboxed: Mapping[str, tuple[str, ...]]
) -> list[ConfigError]:
    """Rules testing `outside_roots` / `off_allowlist` only on named servers that have no roots / domains.

    Such a condition never holds, so the rule silently never applies: a deny that never denies.
    """
    problems = []
    for rule in rules:
        names = rule.match.server
        if names is None or any(c in name for name in names for c in "*?["):
            continue
        for condition in rule.conditions:
            for test, setting in (("outside_roots", "roots"), ("off_allowlist", "domains")):
                if test not in condition.source:
                    continue
                if not any(
                    getattr(policy.servers.get(name), setting, ()) or (setting == "domains" and sandboxed.get(name))
                    for name in names
                ):
                    where = " or ".join(f"policy.servers.{name}.{setting}" for name in names)
                    problems.append(
                        _error(
                            rule,
                            "",
                            f"rule {rule.id} tests `{test}` on {condition.path}, but {where} is not set, "
                            "so the test never holds and the rule never applies",
                            f"set {where}, or remove the test",
                        )
                    )
    return problems


def _catalogue_keys(settings: Mapping[str, CatalogueSetting], source: Path, lines: KeyLines) -> list[ConfigError]:
    if not settings:
        return []
    from bastion.guard.policy.catalogue import CATALOGUE

    problems = []
    for key in settings:
        if any(fnmatch.fnmatchcase(entry_id, key) for entry_id in CATALOGUE):
            continue
        loc: Loc = ("policy", "catalogue", key)
        close = difflib.get_close_matches(key, list(CATALOGUE), n=1)
        fix = f"did you mean `{close[0]}`? " if close else ""
        problems.append(
            ConfigError(
                source,
                format_key(loc),
                f"`{key}` names no catalogue entry",
                fix + "see docs/catalogue.md for the entry ids (a glob such as `sql.*` names a family)",
                line=lines.line_of(loc),
            )
        )
    return problems


def _server_names(policy: PolicyConfig, servers: Collection[str], source: Path, lines: KeyLines) -> list[ConfigError]:
    problems = []
    for name in policy.servers:
        if name not in servers:
            loc: Loc = ("policy", "servers", name)
            problems.append(
                ConfigError(
                    source,
                    format_key(loc),
                    f"names server `{name}`, which is not configured",
                    "use one of: " + (", ".join(sorted(servers)) or "(no servers are configured)"),
                    line=lines.line_of(loc),
                )
            )
    return problems


def policy_of(config: ConfiguredPolicy) -> CompiledPolicy:
    """The compiled policy of a loaded bastion.yaml (already checked when it was loaded)."""
    roles = {name: agent.roles for name, agent in config.agents.items()}
    lines = None
    if config.policy.rules:
        try:  # line numbers, so verdicts can say where their rule is written
            _, lines = parse_yaml(config.source.read_text(encoding="utf-8-sig"), config.source)
        except (OSError, UnicodeDecodeError, ConfigError):
            lines = None
    # Server names were checked when the file was loaded; `bastion wrap` then narrows `servers`.
    compiled = compile_policy(config.policy, source=config.source, lines=lines, roles=roles)
    return replace(compiled, servers=with_sandbox_domains(compiled.servers, config.servers))


def sandbox_domains(servers: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """Each sandboxed server's `allow_domains` (of the `servers:` section): the hosts its egress proxy lets through."""
    found: dict[str, tuple[str, ...]] = {}
    for name, server in servers.items():
        sandbox = getattr(server, "sandbox", None)
        if sandbox is not None and sandbox.enabled and sandbox.network == "allowlist" and sandbox.allow_domains:
            found[name] = tuple(sandbox.allow_domains)
    return found


def with_sandbox_domains(
    contexts: Mapping[str, ServerContext], servers: Mapping[str, object]
) -> dict[str, ServerContext]:
    """One list of domains: a server whose policy names no `domains` is judged against its sandbox's
    `allow_domains`, so a call to a host the sandbox would refuse is refused by policy before it runs."""
    merged = dict(contexts)
    for name, domains in sandbox_domains(servers).items():
        context = merged.get(name, _NO_SERVER_CONTEXT)
        if not context.domains:
            merged[name] = ServerContext(context.roots, domains)
    return merged
