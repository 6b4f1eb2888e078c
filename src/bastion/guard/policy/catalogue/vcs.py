"""Version control: git commands parsed from shell lines, and GitHub/GitLab tools judged by name and arguments."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.shell_parse import Command, long_flags, short_flags
from bastion.guard.policy.catalogue.view import CallView, norm_key
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("vcs.force_push", "Force push", "git push --force / -f / --force-with-lease / --mirror / +refspec, or a "
          "push tool with force: remote history is overwritten.", H, DENY),
    entry("vcs.push_default_branch", "Push straight to the default branch", "git push to main/master, bypassing "
          "review.", M, ASK),
    entry("vcs.reset_hard", "Discard work", "git reset --hard, git clean -f (-dx), git checkout -- . / "
          "restore ., git stash clear/drop: uncommitted work is lost.", M, ASK),
    entry("vcs.branch_delete", "Delete a branch or tag", "git branch -D, git push --delete / --prune / :ref, a "
          "delete-branch tool.", M, ASK),
    entry("vcs.history_rewrite", "Rewrite history", "filter-branch, filter-repo, reflog expire, gc --prune=now, "
          "update-ref -d.", H, DENY),
    entry("vcs.repo_delete", "Delete a repository", "gh repo delete, a delete-repository tool.", C, DENY),
    entry("vcs.visibility_change", "Make a repository public", "Changing a repository's visibility or archiving "
          "it.", H, DENY),
    entry("vcs.file_delete", "Delete a file through the API", "A delete-file tool committing a deletion directly.",
          M, ASK),
    entry("vcs.protection_change", "Weaken branch protection", "Removing branch protection, rulesets or required "
          "reviews.", H, DENY),
    entry("vcs.access_grant", "Grant repository access", "Adding collaborators, deploy keys or changing team "
          "permissions.", H, ASK),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}
DEFAULT_BRANCHES = frozenset({"main", "master", "trunk", "production", "prod"})
_GLOBAL_VALUES = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env",
                            "--super-prefix"})  # fmt: skip
_READ = frozenset({"get", "list", "search", "read", "show", "log", "diff", "status", "view", "fetch"})


def git_findings(cmd: Command) -> Iterator[tuple[str, str]]:
    """(entry id, reason) pairs for one `git` / `gh` command."""
    if cmd.name == "gh":
        yield from _gh(cmd)
        return
    if cmd.name != "git":
        return
    args = list(cmd.args)
    while args and args[0].startswith("-"):  # global options: `-C dir`, `--git-dir=x`, `-c k=v`, `--no-pager`
        args = args[2:] if args[0] in _GLOBAL_VALUES else args[1:]
    if not args:
        return
    sub, rest = args[0], tuple(args[1:])
    flags, longs = short_flags(rest), long_flags(rest)
    operands = [a for a in rest if not a.startswith("-")]
    line = " ".join(cmd.argv)[:100]
    if sub == "push":
        if (
            "f" in flags
            or longs & {"--force", "--force-with-lease", "--force-if-includes", "--mirror"}
            or any(o.startswith("+") for o in operands)
        ):
            yield "vcs.force_push", line
        if "d" in flags or longs & {"--delete", "--prune"} or any(o.startswith(":") and len(o) > 1 for o in operands):
            yield "vcs.branch_delete", line
        elif any(o.split(":")[-1].removeprefix("refs/heads/").lstrip("+") in DEFAULT_BRANCHES for o in operands[1:]):
            yield "vcs.push_default_branch", line
    else:
        rule = _LOCAL_RULES.get(sub)
        eid = rule(flags, longs, operands, rest) if rule is not None else None
        if eid:
            yield eid, line


_LOCAL_RULES: dict[str, Callable[[set[str], set[str], list[str], tuple[str, ...]], str | None]] = {
    "reset": lambda f, lf, ops, r: "vcs.reset_hard" if "--hard" in lf else None,
    "clean": lambda f, lf, ops, r: "vcs.reset_hard" if "f" in f or "--force" in lf else None,
    "stash": lambda f, lf, ops, r: "vcs.reset_hard" if ops[:1] in (["clear"], ["drop"]) else None,
    "checkout": lambda f, lf, ops, r: "vcs.reset_hard" if "." in ops and "--" in r else None,
    "restore": lambda f, lf, ops, r: "vcs.reset_hard" if "." in ops else None,
    "branch": lambda f, lf, ops, r: "vcs.branch_delete" if "D" in f or ("d" in f and "--force" in lf) else None,
    "tag": lambda f, lf, ops, r: "vcs.branch_delete" if "d" in f else None,
    "filter-branch": lambda f, lf, ops, r: "vcs.history_rewrite",
    "filter-repo": lambda f, lf, ops, r: "vcs.history_rewrite",
    "reflog": lambda f, lf, ops, r: "vcs.history_rewrite" if ops[:1] == ["expire"] else None,
    "gc": lambda f, lf, ops, r: "vcs.history_rewrite" if any(a.startswith("--prune=now") for a in r) else None,
    "update-ref": lambda f, lf, ops, r: "vcs.history_rewrite" if "d" in f else None,
}


def _gh(cmd: Command) -> Iterator[tuple[str, str]]:
    args = cmd.args
    line = " ".join(cmd.argv)[:100]
    pair = tuple(args[:2])
    if pair == ("repo", "delete"):
        yield "vcs.repo_delete", line
    elif pair == ("repo", "archive") or (pair == ("repo", "edit") and any("public" in a for a in args)):
        yield "vcs.visibility_change", line
    elif args[:1] == ("api",) and any(a.upper() == "DELETE" for a in args):
        yield ("vcs.protection_change" if any("protection" in a for a in args) else "vcs.branch_delete"), line


def detect(call: CallView) -> Iterator[Finding]:
    for where, script in call.commands:
        for cmd in script.commands:
            for eid, reason in git_findings(cmd):
                yield Finding(_BY_ID[eid], f"{reason} in {where.path}", where.path)
    yield from _tools(call)


def _tools(call: CallView) -> Iterator[Finding]:
    words = call.tool_words
    if words & _READ:
        return
    vcs_context = bool(call.words & {"git", "github", "gitlab", "bitbucket", "gitea", "repo", "repository"})
    if not vcs_context:
        return
    deleting = bool(words & {"delete", "remove"})
    if deleting and words & {"repository", "repo"}:
        yield Finding(_BY_ID["vcs.repo_delete"], f"tool {call.tool}", "arguments")
    elif words & {"protection", "ruleset", "rulesets"} and (deleting or words & {"update", "disable"}):
        yield Finding(_BY_ID["vcs.protection_change"], f"tool {call.tool}", "arguments")
    elif deleting and words & {"branch", "ref", "tag"}:
        yield Finding(_BY_ID["vcs.branch_delete"], f"tool {call.tool}", "arguments")
    elif deleting and words & {"file", "files", "path"}:
        branch = call.first("branch", "ref")
        where = f" on {branch.value}" if branch else ""
        yield Finding(_BY_ID["vcs.file_delete"], f"tool {call.tool}{where}", "arguments")
    elif words & {"collaborator", "collaborators", "key", "keys", "member", "permission"} and words & {
        "add",
        "create",
        "update",
        "set",
    }:
        yield Finding(_BY_ID["vcs.access_grant"], f"tool {call.tool}", "arguments")
    forced = bool(words & {"clean", "push", "update"}) and _forced(call)  # only these words read it
    if words & {"reset"} and _hard(call):
        yield Finding(_BY_ID["vcs.reset_hard"], f"tool {call.tool} resets hard", "arguments")
    if words & {"clean"} and (forced or call.flag("directories", "ignored", "x", "d")):
        yield Finding(_BY_ID["vcs.reset_hard"], f"tool {call.tool} removes untracked files", "arguments")
    if forced and words & {"push", "update"} and words & {"ref", "branch", "push", "files"}:
        yield Finding(_BY_ID["vcs.force_push"], f"tool {call.tool} with force", "arguments.force")
    visibility = call.first("visibility")
    if (visibility is not None and visibility.value.lower() == "public") or (
        call.scalar("private") is not None
        and call.scalar("private").value is False  # type: ignore[union-attr]
        and words & {"update", "edit"}
    ):
        yield Finding(_BY_ID["vcs.visibility_change"], f"tool {call.tool} makes a repository public", "arguments")


def _forced(call: CallView) -> bool:
    """A force flag among the arguments (`force: true`, `mode: "force-with-lease"`)."""
    return any(s.value is True and "force" in norm_key(s.key) for s in call.scalars) or any(
        s.value.strip().lower() in ("force", "force-with-lease", "--force", "--force-with-lease", "-f")
        for s in call.strings
        if norm_key(s.key) in ("mode", "strategy", "options", "flags", "pushmode")
    )


def _hard(call: CallView) -> bool:
    """A hard reset asked for (`hard: true`, `mode: "hard"`)."""
    return call.flag("hard") or any(
        s.value.strip().lower() in ("hard", "--hard") for s in call.strings if norm_key(s.key) in ("mode", "type")
    )
