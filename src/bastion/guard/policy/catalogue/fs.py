"""Files: paths normalised (`..`, `~`, duplicate slashes) and judged against the allowed roots and sensitive paths.

Whether a call reads or writes a path is judged from the tool name's words (`write_file`,
`move_file`, `delete_*`) and the key (`destination`); a tool whose name says neither is taken
as reading. `~` is a home directory this scan does not know: it is inside a root only if the
root itself starts with `~`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, StringValue, entry
from bastion.guard.policy.catalogue.machine import machine_path
from bastion.guard.policy.catalogue.needles import Needles
from bastion.guard.policy.catalogue.view import CallView, norm_key
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("fs.write_outside_roots", "Write outside the allowed roots", "A write, move or delete of a path outside "
          "the server's allowed roots.", H, DENY),
    entry("fs.read_outside_roots", "Read outside the allowed roots", "A read of a path outside the server's allowed "
          "roots.", M, ASK),
    entry("fs.path_traversal", "Path traversal", "A path whose `..` segments climb out of the allowed roots (or, "
          "with none configured, into a sensitive path).", H, DENY),
    entry("fs.sensitive_read", "Read a sensitive file", "A read of secrets files: .env, .netrc, .pgpass, "
          ".git-credentials, /etc/shadow, /etc/passwd, /proc/*/environ, ...", H, DENY),
    entry("fs.credentials_read", "Read keys or cloud credentials", "A read of SSH private keys, ~/.aws, gcloud, "
          "Azure, kube or docker credentials, key stores.", C, DENY),
    entry("fs.sensitive_write", "Write a sensitive file", "A write, move or delete of secrets files, SSH files, "
          "credentials or anything under /etc.", C, DENY),
    entry("fs.git_hook_write", "Write a git hook", "A write under .git/hooks: code that runs on every commit.", C,
          DENY),
    entry("fs.startup_file_write", "Write a shell startup file", ".bashrc, .profile, .zshrc, ...: code that runs at "
          "every login.", H, DENY),
    entry("fs.ci_config_write", "Change CI configuration", "A write under .github/workflows, .gitlab-ci.yml, "
          ".circleci: code that runs with CI secrets.", M, ASK),
    entry("fs.system_path_write", "Write a system path", "A write under /usr, /bin, /sbin, /lib, /boot, /var/lib, "
          "/sys or /proc.", C, DENY),
    entry("fs.device_access", "Access a raw device or kernel memory", "/dev/sd*, /dev/mem, /proc/kcore, "
          "docker.sock.", C, DENY),
    entry("fs.recursive_delete", "Delete a directory tree", "A file tool deleting a directory recursively.", H, ASK),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}

_TEMPLATE_SUFFIX = re.compile(r"\.(example|sample|template|dist|defaults?|tmpl|tpl)$")
_CREDENTIALS = re.compile(r"(^|/)(\.ssh/(id_[a-z0-9_]+|identity)(?!\.pub$)|\.aws/(credentials|config)|\.config/gcloud/"
                          r"|application_default_credentials\.json|\.azure/|\.kube/config|\.docker/config\.json"
                          r"|\.gnupg/|\.vault-token|[^/]+\.(p12|pfx|jks|keystore|ppk)$|id_(rsa|dsa|ecdsa|ed25519)$"
                          r"|(Login Data|Cookies|key[34]\.db|logins\.json)$|\.password-store/)")  # fmt: skip
_SECRET_FILES = re.compile(r"(^|/)(\.env(\.[\w-]+)?|\.netrc|_netrc|\.pgpass|\.git-credentials|\.npmrc|\.pypirc"
                           r"|\.my\.cnf|\.terraformrc|credentials\.json|secrets?\.(ya?ml|json|toml)|\.htpasswd"
                           r"|terraform\.tfstate|\.ssh/[^/]*|\.ssh)$|^/etc/(shadow|gshadow|passwd|sudoers(\.d/.*)?"
                           r"|ssh/.*key)$|^/proc/[^/]+/(environ|mem|cmdline)$")  # fmt: skip
_STARTUP = re.compile(r"(^|/)\.(bashrc|bash_profile|bash_login|profile|zshrc|zprofile|zshenv|login|cshrc|tcshrc"
                      r"|config/fish/config\.fish)$|(^|/)Library/LaunchAgents/")  # fmt: skip
_CI = re.compile(r"(^|/)(\.github/workflows/|\.gitlab-ci\.yml$|\.circleci/|Jenkinsfile$|\.buildkite/|azure-pipelines)")
_SYSTEM = re.compile(r"^/(usr|bin|sbin|lib|lib64|boot|sys|proc|var/lib|var/spool/cron|opt/[^/]+/bin)(/|$)")
_DEVICE = re.compile(r"^/dev/(sd|hd|vd|xvd|nvme|mmcblk|mem|kmem|port|disk)|^/proc/kcore$|docker\.sock$")
_ANY_SENSITIVE = re.compile(
    "|".join(p.pattern for p in (_DEVICE, _CREDENTIALS, _SECRET_FILES, _STARTUP, _CI, _SYSTEM))
    + r"|/\.git/hooks/|^\.git/hooks/|^/etc(/|$)"
)
"""Every sensitive kind in one pattern (the reference the path needles are tested against)."""
_PATH_NEEDLES = Needles()
_PATH_NEEDLES.add(
    n.lower()
    for n in (
        # _DEVICE, _SYSTEM, /etc and the /proc files (`^/...`): what such a path starts with
        "/dev/", "/proc", "docker.sock", "/etc", "/usr", "/bin", "/sbin", "/lib", "/boot", "/sys", "/var/lib",
        "/var/spool/cron", "/opt/",
        # _CREDENTIALS
        ".ssh", ".aws/", ".config/gcloud/", "application_default_credentials.json", ".azure/", ".kube/config",
        ".docker/config.json", ".gnupg/", ".vault-token", ".p12", ".pfx", ".jks", ".keystore", ".ppk", "id_",
        "Login Data", "Cookies", "key3.db", "key4.db", "logins.json", ".password-store/",
        # _SECRET_FILES
        ".env", ".netrc", "_netrc", ".pgpass", ".git-credentials", ".npmrc", ".pypirc", ".my.cnf", ".terraformrc",
        "credentials.json", "secret", ".htpasswd", "terraform.tfstate",
        # _STARTUP
        ".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile", ".zshenv", ".login", ".cshrc",
        ".tcshrc", ".config/fish/config.fish", "Library/LaunchAgents/",
        # _CI, git hooks
        ".github/workflows/", ".gitlab-ci.yml", ".circleci/", "Jenkinsfile", ".buildkite/", "azure-pipelines",
        ".git/hooks/",
    )
)  # fmt: skip
"""A literal every branch of `_ANY_SENSITIVE` needs, lower-cased: a path holding none of them (the common case,
found in one Aho-Corasick pass) is no sensitive path. One regex over every kind costs several microseconds a path:
its alternation defeats the regex engine's literal scan."""


def may_be_sensitive(path: str) -> bool:
    """False only when `path` matches no sensitive kind (`_ANY_SENSITIVE`): it holds none of `_PATH_NEEDLES`."""
    return bool(_PATH_NEEDLES.find(path.lower()))


_WRITE_WORDS = frozenset({"write", "edit", "create", "move", "rename", "delete", "remove", "append", "copy", "upload",
                          "save", "put", "mkdir", "patch", "replace", "chmod", "chown", "truncate", "unlink", "rm",
                          "touch", "insert", "overwrite", "modify", "set", "update", "mv", "cp"})  # fmt: skip
_READ_WORDS = frozenset(
    {
        "read",
        "get",
        "cat",
        "head",
        "tail",
        "view",
        "open",
        "show",
        "list",
        "search",
        "find",
        "stat",
        "info",
        "tree",
        "download",
        "load",
        "fetch",
        "describe",
        "diff",
        "log",
        "status",
    }
)
_BASE_KEYS = frozenset({"cwd", "workdir", "workingdirectory", "repopath", "directory"})
"""Keys (normalised) whose value relative paths are joined to."""
_DELETING = frozenset({"rm", "rmdir", "unlink", "shred", "truncate", "srm", "wipe"})
"""Commands whose path arguments are destroyed: judged as writes."""
_DEST_KEYS = frozenset({"destination", "dest", "dst", "target", "to", "output", "outfile", "newpath", "targetpath"})


def normalise(value: str, base: str = "") -> str:
    """`value` with duplicate slashes, `.` and `..` folded; relative paths joined to `base`."""
    if len(value) <= _CACHED_LENGTH:
        return _normalise_cached(value, base)  # the allowed roots, normalised on every call, and repeated paths
    return _normalise(value, base)


_CACHED_LENGTH = 512


def _normalise(value: str, base: str) -> str:
    v = machine_path(value).replace("\\", "/")
    if v.startswith("file://"):
        v = v[7:]
    if base and not v.startswith(("/", "~")):
        v = posixpath.join(base, v)
    if "//" in v:
        v = re.sub(r"/+", "/", v)
    if v.startswith("~"):
        head, _, rest = v.partition("/")
        return head + ("/" + posixpath.normpath("/" + rest).lstrip("/") if rest else "")
    return posixpath.normpath(v) if v else v


_normalise_cached = lru_cache(maxsize=4096)(_normalise)


def _root(root: str) -> str:
    """An allowed root, normalised (`normalise(root)`). Roots are configuration, the same on every call to a
    server: cached apart from the calls' own paths, which may each be new."""
    return _root_cached(root) if len(root) <= _CACHED_LENGTH else _normalise(root, "")


@lru_cache(maxsize=256)
def _root_cached(root: str) -> str:
    return _normalise(root, "")


def _inside(path: str, root: str) -> bool:
    root = _root(root)
    return path == root or path.startswith(root.rstrip("/") + "/") or root == "/"


def path_outside_roots(value: str, roots: Sequence[str]) -> bool:
    """Whether `value`, normalised (relative paths against the first root), lies outside every root.

    False when no roots are configured or `value` is not a string. Never raises."""
    try:
        if not roots or not isinstance(value, str) or not value.strip():
            return False
        path = normalise(value, _root(roots[0]))
        return not any(_inside(path, r) for r in roots)
    except Exception:
        return False


def sensitive_path(value: str) -> str | None:
    """The kind of sensitive path `value` names (`credentials`, `secrets`, `git_hook`, `startup`, `ci`, `system`,
    `device`, `etc`), or None. Template files (`.env.example`) are not sensitive. Never raises."""
    try:
        return _sensitive(normalise(value)) if isinstance(value, str) and value.strip() else None
    except Exception:
        return None


def _sensitive(path: str) -> str | None:
    if not may_be_sensitive(path) or _TEMPLATE_SUFFIX.search(path):
        return None
    if _DEVICE.search(path):
        return "device"
    if _CREDENTIALS.search(path):
        return "credentials"
    if _SECRET_FILES.search(path):
        return "secrets"
    if "/.git/hooks/" in path or path.startswith(".git/hooks/"):
        return "git_hook"
    if _STARTUP.search(path):
        return "startup"
    if _CI.search(path):
        return "ci"
    if path.startswith("/etc/") or path == "/etc":
        return "etc"
    if _SYSTEM.match(path):
        return "system"
    return None


_READ_KIND = {"credentials": "fs.credentials_read", "secrets": "fs.sensitive_read", "device": "fs.device_access"}
_WRITE_KIND = {"credentials": "fs.sensitive_write", "secrets": "fs.sensitive_write", "device": "fs.device_access",
               "git_hook": "fs.git_hook_write", "startup": "fs.startup_file_write", "ci": "fs.ci_config_write",
               "etc": "fs.sensitive_write", "system": "fs.system_path_write"}  # fmt: skip


def judge_path(value: str, write: bool, roots: Sequence[str], base: str = "") -> Iterator[tuple[str, str]]:
    """(entry id, reason) pairs for one path accessed for reading or writing."""
    if len(value) <= _CACHED_LENGTH and type(roots) is tuple:
        return iter(_judged(value, write, roots, base))  # a workdir or repository path is judged on every call
    return _judge(value, write, roots, base)


@lru_cache(maxsize=4096)
def _judged(value: str, write: bool, roots: tuple[str, ...], base: str) -> tuple[tuple[str, str], ...]:
    return tuple(_judge(value, write, roots, base))


def _judge(value: str, write: bool, roots: Sequence[str], base: str) -> Iterator[tuple[str, str]]:
    root0 = _root(roots[0]) if roots else ""
    path = normalise(value, base or root0)
    kind = _sensitive(path)
    verb = "write" if write else "read"
    eid = (_WRITE_KIND if write else _READ_KIND).get(kind or "")
    if eid:
        yield eid, f"{verb} of {kind} path {path}"
    if roots and not any(_inside(path, r) for r in roots):
        if ".." in value.replace("\\", "/").split("/"):
            yield "fs.path_traversal", f"{value} resolves to {path}, outside {', '.join(roots)}"
        yield ("fs.write_outside_roots" if write else "fs.read_outside_roots"), f"{verb} of {path} outside roots"
    elif not roots and kind and ".." in value.split("/"):
        yield "fs.path_traversal", f"{value} resolves to {path}"


def _is_write(call: CallView, s: StringValue) -> bool:
    words = call.tool_words
    if words & {"copy", "cp"}:
        return norm_key(s.key) in _DEST_KEYS
    return bool(words & _WRITE_WORDS) and not (words & _READ_WORDS and not words & {"write", "edit", "move", "delete"})


def detect(call: CallView) -> Iterator[Finding]:
    roots = call.context.allowed_roots
    base_sv = next((s for s in call.strings if norm_key(s.key) in _BASE_KEYS), None)
    base = normalise(base_sv.value) if base_sv else ""
    for s in call.paths:
        for eid, reason in judge_path(s.value, _is_write(call, s), roots, base if s is not base_sv else ""):
            yield Finding(_BY_ID[eid], f"{reason} in {s.path}", s.path)
    if (
        call.tool_words & {"delete", "remove", "rm"}
        and call.tool_words & {"directory", "dir", "folder", "tree"}
        and (call.flag("recursive", "force") or call.tool_words & {"tree", "recursive"})
    ):
        yield Finding(_BY_ID["fs.recursive_delete"], f"tool {call.tool} deletes a directory tree", "arguments")
    yield from _shell_paths(call, roots, base)


def _shell_paths(call: CallView, roots: Sequence[str], base: str) -> Iterator[Finding]:
    for where, script in call.commands:
        for cmd in script.commands:
            for op, target in cmd.redirects:
                if ">" in op and target.startswith(("/", "~", ".")) and not target.startswith("/dev/"):
                    for eid, reason in judge_path(target, True, roots, base):
                        yield Finding(_BY_ID[eid], f"{cmd.name} redirect: {reason} in {where.path}", where.path)
            for arg in cmd.args:
                if ("/" in arg or arg.startswith(".")) and not arg.startswith("-") and "://" not in arg:
                    kind = _sensitive(normalise(arg, base))
                    read_eid = (_WRITE_KIND if cmd.name in _DELETING else _READ_KIND).get(kind or "")
                    if read_eid:
                        yield Finding(
                            _BY_ID[read_eid], f"{cmd.name} touches {kind} path {arg} in {where.path}", where.path
                        )
