"""Parse a shell command line into the simple commands it runs, with bashlex.

The parse goes through quoting, `$(...)` and backticks, `sh -c`/`bash -c`/`eval` strings,
base64 payloads echoed into a decoder, `${IFS}` tricks and variables assigned earlier on the
same line. What it cannot see (a script file's content, variables from the environment) it
marks as dynamic. Parsing never raises: text bashlex rejects falls back to a split on operators.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bastion.guard.policy.catalogue.effects import HIDDEN, RUN_DOWNLOAD, SHELL, as_argv
from bastion.guard.policy.catalogue.interpreters import (
    LANGUAGES,
    code_flag,
    heredocs,
    inline_effects,
    without_heredocs,
)
from bastion.guard.policy.catalogue.shell_lex import plain_line
from bastion.guard.policy.catalogue.wrappers import WRAPPERS as WRAPPER_SPECS
from bastion.guard.policy.catalogue.wrappers import inner_commands, peel

MAX_NESTING = 4
MAX_PARSED = 16_384
"""Longer text is split on operators instead of parsed (bashlex is slow on huge input)."""
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "fish"})
INTERPRETERS = SHELLS | frozenset(
    {"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "pwsh", "powershell", "osascript"}
)
WRAPPERS = frozenset(WRAPPER_SPECS)
KNOWN_PROGRAMS = WRAPPERS | INTERPRETERS | frozenset(LANGUAGES) | frozenset(
    {"rm", "rmdir", "unlink", "find", "chmod", "chown", "dd", "shred", "mkfs", "wipefs", "crontab", "at", "systemctl",
     "service", "iptables", "ufw", "setenforce", "nc", "ncat", "netcat", "socat", "curl", "wget", "scp", "rsync",
     "truncate", "git", "gh", "kubectl", "oc", "helm", "terraform", "tofu", "terragrunt", "pulumi", "aws", "gcloud",
     "az", "gsutil", "docker", "podman", "psql", "mysql", "sqlite3", "mongo", "mongosh", "redis-cli", "pip", "pip3",
     "npm", "pnpm", "yarn", "gem", "cargo", "go", "apt", "apt-get", "yum", "dnf", "apk", "brew", "useradd", "usermod",
     "passwd", "shutdown", "reboot", "halt", "poweroff", "kill", "killall", "pkill", "mv", "cp", "tee", "ssh", "eval",
     "su", "cmd", "make", "ls", "cat", "echo", "tar", "zip", "ln", "install", "mount", "umount", "cdk", "cdktf"}
)  # fmt: skip
"""Programs an argv list may start with to be taken as a command wherever it is (see `commands`)."""
_IFS = re.compile(r"\$\{IFS[^}]*\}|\$IFS\b")
_ANSI_C = re.compile(r"^\$'(.*)'$", re.S)
_ANSI_C_SPAN = re.compile(r"\$'((?:[^'\\]|\\.)*)'")
_SIMPLE = re.compile(r"[A-Za-z0-9_./=:,@%+\-~ \t^]*")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_B64 = re.compile(r"^[A-Za-z0-9+/=_-]{12,}$")


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command: its argv (wrappers like `sudo`/`env` stripped into `wrappers`) and redirects."""

    argv: tuple[str, ...]
    redirects: tuple[tuple[str, str], ...] = ()
    wrappers: tuple[str, ...] = ()
    dynamic: bool = False
    """The command name came from an expansion this parse could not resolve."""
    via: str = ""
    """How it was reached when nested: `sh -c`, `$(...)`, `base64`, ..."""
    name: str = ""
    """argv[0] without its directory (`/usr/bin/rm` -> `rm`)."""

    @property
    def args(self) -> tuple[str, ...]:
        return self.argv[1:]


@dataclass(slots=True)
class Script:
    """A parsed command line: every command it runs (nested ones included) and its pipelines."""

    commands: list[Command] = field(default_factory=list)
    pipelines: list[list[Command]] = field(default_factory=list)
    obfuscations: list[str] = field(default_factory=list)
    parsed: bool = True
    fork_bomb: bool = False
    oversized: bool = False
    """Longer than MAX_PARSED: split on operators and whitespace, not parsed (quoting tricks are not undone)."""
    fast: bool = field(default=True, compare=False, repr=False)
    """Whether plain lines (`shell_lex.plain_line`) skip bashlex; off only to compare the two readings."""


def short_flags(args: tuple[str, ...] | list[str]) -> set[str]:
    """The single-letter flags in args: `-rf` -> {"r", "f"}."""
    return {c for a in args if a.startswith("-") and not a.startswith("--") for c in a[1:]}


def long_flags(args: tuple[str, ...] | list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def _decode_ansi_c(word: str) -> str:
    m = _ANSI_C.match(word)
    if not m:
        return word
    try:
        return codecs.decode(m.group(1), "unicode_escape")
    except (UnicodeDecodeError, ValueError):
        return word


def b64_payload(text: str) -> str | None:
    """`text` decoded from base64 when it decodes to printable text, else None."""
    t = text.strip()
    if not _B64.match(t):
        return None
    try:
        raw = base64.b64decode(t + "=" * (-len(t) % 4), altchars=b"-_" if ("-" in t or "_" in t) else None)
        out = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return out if out and all(c.isprintable() or c in "\n\t\r" for c in out) else None


class _Builder:
    def __init__(self, script: Script, depth: int, via: str, text: str = "") -> None:
        self.script = script
        self.depth = depth
        self.via = via
        self.vars: dict[str, str] = {}
        self.text = text
        """The source the nodes' positions index, to unquote words as bash does."""

    def visit(self, node: Any) -> list[Command]:
        """Visit a node; return the commands of the pipeline it is (for pipeline bookkeeping)."""
        kind = getattr(node, "kind", "")
        if kind == "command":
            return [self.command(node)]
        if kind == "pipeline":
            stages: list[Command] = []
            for part in node.parts:
                if getattr(part, "kind", "") != "pipe":
                    got = self.visit(part)
                    if got:
                        stages.append(got[-1])
            if len(stages) > 1:
                self.script.pipelines.append(stages)
            return stages
        if kind == "function":
            name = getattr(node.parts[0], "word", "") if node.parts else ""
            before = len(self.script.pipelines)
            for child in node.parts[1:]:
                self.visit(child)
            if any(all(c.argv[:1] == (name,) for c in p) for p in self.script.pipelines[before:]):
                self.script.fork_bomb = True
            return []
        last: list[Command] = []
        for child in _children(node):
            last = self.visit(child)
        return last

    def resolve(self, word: str) -> str:
        return _VAR.sub(lambda m: self.vars.get(m.group(1), m.group(0)), word)

    def substitutions(self, node: Any) -> None:
        for part in getattr(node, "parts", None) or []:
            kind = getattr(part, "kind", "")
            if kind in ("commandsubstitution", "processsubstitution"):
                sub = _Builder(self.script, self.depth, "$(...)", self.text)
                sub.vars = self.vars
                sub.visit(part.command)
            else:
                self.substitutions(part)

    def command(self, node: Any) -> Command:
        argv: list[str] = []
        redirects: list[tuple[str, str]] = []
        for part in node.parts:
            kind = getattr(part, "kind", "")
            if kind == "assignment":
                self.substitutions(part)
                name, _, value = part.word.partition("=")
                self.vars[name] = self._value(part, value)
            elif kind == "word":
                self.substitutions(part)
                base = self.unquoted(part)
                word = _decode_ansi_c(self.resolve(base))
                if not argv and word != base and "$" not in word:
                    self.script.obfuscations.append(f"command name {word!r} built from {part.word!r}")
                argv.append(word)
            elif kind == "redirect":
                target = part.output
                if getattr(target, "kind", "") == "word":
                    self.substitutions(target)
                    redirects.append((part.type, self.resolve(target.word)))
                else:
                    redirects.append((part.type, str(target)))
        return self.add(argv, tuple(redirects))

    def unquoted(self, part: Any) -> str:
        """The word as bash reads it: bashlex keeps the quotes of `'a'"b"'c'` after the first segment."""
        word: str = part.word
        pos = getattr(part, "pos", None)
        if not self.text or not pos or ("'" not in word and '"' not in word):
            return word
        raw = self.text[pos[0] : pos[1]]
        if "$" in raw or "`" in raw:
            return word  # expansions inside quotes: bashlex's reading, then `resolve`
        try:
            words = shlex.split(raw)
        except ValueError:
            return word
        return words[0] if len(words) == 1 else word

    def _value(self, part: Any, value: str) -> str:
        for sub in getattr(part, "parts", None) or []:
            if getattr(sub, "kind", "") == "commandsubstitution":
                cmd = getattr(sub, "command", None)
                words = [w.word for w in getattr(cmd, "parts", []) if getattr(w, "kind", "") == "word"]
                if words and words[0] in ("echo", "printf"):
                    return " ".join(words[1:])
        return self.resolve(value)

    def add(self, argv: list[str], redirects: tuple[tuple[str, str], ...]) -> Command:
        wrappers: list[str] = []
        while argv and _ASSIGNMENT.match(argv[0]):  # `FOO=1 rm ...` (the fallback and fast paths see it as a word)
            argv = argv[1:]
        while argv and argv[0].rsplit("/", 1)[-1] in WRAPPERS and len(wrappers) < 16:
            wrappers.append(argv[0].rsplit("/", 1)[-1])
            argv = peel(wrappers[-1], argv[1:]) or []
        dynamic = bool(argv) and ("$" in argv[0] or "`" in argv[0])
        if argv and "\\" in argv[0]:
            argv[0] = argv[0].replace("\\", "")
        if dynamic:
            self.script.obfuscations.append(f"command name from an expansion: {argv[0]}")
        name = argv[0].rsplit("/", 1)[-1] if argv else ""
        cmd = Command(tuple(argv), redirects, tuple(wrappers), dynamic, self.via, name)
        self.script.commands.append(cmd)
        self.nested(cmd)
        for op, body in redirects:
            if op == "<<<":
                self.stdin(name, body)  # `python3 <<< 'code'`: the here-string is the program
        return cmd

    def stdin(self, name: str, body: str) -> None:
        """Code a shell or an interpreter reads from its input (a here-string or a here-document)."""
        if self.depth >= MAX_NESTING or not body.strip():
            return
        if name in SHELLS:
            _parse_into(self.script, body, self.depth + 1, f"{name} <<")
        elif (flag := code_flag(name)) is not None:
            _Builder(self.script, self.depth + 1, f"{name} <<").add([name, *flag, body], ())

    def code(self, cmd: Command) -> None:
        """Inline interpreter code: the commands it runs are parsed, its other effects added as equivalent commands."""
        effects = inline_effects(cmd.name, cmd.args, self.depth)
        via = f"{cmd.name} code"
        sub = _Builder(self.script, self.depth + 1, via)
        for e in effects:
            if e.kind == SHELL and "*" in (e.words[0].split() or ["*"])[0]:
                sub.add(["sh", "-c", "$CODE"], ())  # a command built at run time: its text is not visible
            elif e.kind == SHELL:
                _parse_into(self.script, e.words[0], self.depth + 1, via)
            elif e.kind == HIDDEN:
                self.script.obfuscations.append(f"{cmd.name}: {e.words[0] if e.words else 'hidden code'}")
            elif e.kind == RUN_DOWNLOAD:
                fetch = sub.add(["curl", "-s", e.words[0] if e.words else "*"], ())
                runner = sub.add([cmd.name], ())
                self.script.pipelines.append([fetch, runner])
            elif (line := as_argv(e)) is not None:
                sub.add(*line)

    def nested(self, cmd: Command) -> None:
        if self.depth >= MAX_NESTING or not cmd.argv:
            return
        inner: str | None = None
        if cmd.name in SHELLS or cmd.name in ("su", "runuser"):
            args = list(cmd.args)
            for i, a in enumerate(args):
                if a.startswith("--command="):
                    inner = a.split("=", 1)[1]
                    break
                if (
                    a == "--command" or (a.startswith("-") and not a.startswith("--") and "c" in a[1:])
                ) and i + 1 < len(args):
                    inner = args[i + 1]
                    break
        elif cmd.name == "eval":
            inner = " ".join(cmd.args)
        elif cmd.name == "ssh":
            rest = [a for a in cmd.args if not a.startswith("-")]
            inner = " ".join(rest[1:]) if len(rest) > 1 else None
        elif cmd.name in LANGUAGES or cmd.name.lower().removesuffix(".exe") in LANGUAGES:
            self.code(cmd)
        else:
            for via, inner_argv in inner_commands(cmd.name, cmd.args):
                _Builder(self.script, self.depth + 1, via).add(inner_argv, ())
        if inner:
            _parse_into(self.script, inner, self.depth + 1, f"{cmd.name} -c")
        if cmd.name in ("echo", "printf"):
            for a in cmd.args:
                payload = b64_payload(a)
                if payload and any(c in payload for c in " |;/"):
                    _parse_into(self.script, payload, self.depth + 1, "base64")


def _ansi_c_word(script: Script, body: str) -> str:
    decoded = _decode_ansi_c(f"$'{body}'")
    if re.search(r"\\(x[0-9a-fA-F]|[0-7]{1,3}|u[0-9a-fA-F])", body):
        script.obfuscations.append(f"escaped characters $'{body[:40]}' spell {decoded[:40]!r}")
    return shlex.quote(decoded)


def _children(node: Any) -> list[Any]:
    kids: list[Any] = []
    for attr in ("parts", "list"):
        value = getattr(node, attr, None)
        if isinstance(value, list):
            kids.extend(value)
    command = getattr(node, "command", None)
    if command is not None:
        kids.append(command)
    return kids


def _parse_into(script: Script, text: str, depth: int, via: str) -> None:
    if _IFS.search(text):
        script.obfuscations.append("${IFS} used as a separator")
        text = _IFS.sub(" ", text)
    if "$'" in text:
        text = _ANSI_C_SPAN.sub(lambda m: _ansi_c_word(script, m.group(1)), text)
    builder = _Builder(script, depth, via, text)
    if script.fast and (pipelines := plain_line(text)) is not None:
        for stages in pipelines:  # what bashlex would build, without its grammar walk (see `shell_lex`)
            built = [builder.add(words, tuple(redirects)) for words, redirects in stages]
            if len(built) > 1:
                script.pipelines.append(built)
        return
    import bashlex  # type: ignore[import-untyped]  # here, not above: parsing shell is not on every path

    for reader, body in heredocs(text) if "<<" in text else ():
        builder.stdin(reader, body)
    try:
        trees = bashlex.parse(text)
    except Exception:  # bashlex raises many types on text it cannot parse
        script.parsed = False
        _fallback(builder, without_heredocs(text) if "<<" in text else text)
        return
    for tree in trees:
        builder.visit(tree)


def _fallback(builder: _Builder, text: str, quoted: bool = True) -> None:
    """Commands of text bashlex rejects (or that is too long for it): split on operators, then words."""
    for segment in re.split(r"\|\||&&|;|\n", text):
        stages: list[Command] = []
        for piece in segment.split("|"):
            try:
                argv = shlex.split(piece) if quoted else piece.replace("'", " ").replace('"', " ").split()
            except ValueError:
                argv = piece.split()
            if argv:
                stages.append(builder.add(argv, ()))
        if len(stages) > 1:
            builder.script.pipelines.append(stages)


@lru_cache(maxsize=2048)
def parse_shell(text: str, fast: bool = True) -> Script:
    """Parse `text` as a shell command line. Cached: callers must not mutate the result. `fast=False` hands
    every line to bashlex (`shell_lex` off), for the differential tests and A/B measurements."""
    script = Script(fast=fast)
    if len(text) > MAX_PARSED:
        script.parsed = False
        script.oversized = True
        _fallback(_Builder(script, MAX_NESTING, ""), text, quoted=False)
        return script
    if _SIMPLE.fullmatch(text):
        # No quotes, expansions, operators, braces or comments: bash would split on whitespace alone.
        _Builder(script, 0, "").add(text.split(), ())
        return script
    _parse_into(script, text, 0, "")
    return script
