"""Commands in any shape: the argv forms of a call's arguments, joined as the OS would run them.

A command is a string (`{"command": "rm -rf x"}`, found by `view`), an argv list (`{"cmd": ["rm",
"-rf", "x"]}`, or `["git", "push", "-f"]` under any key), or a program plus its arguments
(`{"program": "git", "args": [...]}`, `{"command": "sh", "args": ["-c", "..."]}`), at any depth.
Argv forms are joined with shell quoting, so `shell_parse` reads back exactly the words `execve`
would get, and the line is judged like the same command typed as a string.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bastion.guard.policy.catalogue.shell_parse import KNOWN_PROGRAMS

COMMAND_WORDS = frozenset({"command", "commands", "cmd", "cmds", "commandline", "cmdline", "argv", "bash", "sh",
                           "shell", "exec", "script", "entrypoint", "run"})  # fmt: skip
"""A key with one of these words (`command`, `shell_cmd`, `startCommand`, `argv`) holds a command."""
PROGRAM_KEYS = frozenset({"program", "executable", "exe", "binary", "bin", "command", "cmd", "file", "path",
                          "entrypoint", "interpreter", "shell", "prog", "process", "name", "tool"})  # fmt: skip
"""Keys that may hold the program of a program-plus-arguments object."""
ARG_KEYS = frozenset({"args", "argv", "arguments", "params", "parameters", "arglist", "commandargs", "cmdargs",
                      "programargs", "processargs"})  # fmt: skip
"""Keys that may hold that program's arguments (a list of words, or one string split like a shell)."""
_ARG_WORDS = frozenset({"args", "argv", "arguments", "params", "parameters", "arglist"})


@lru_cache(maxsize=4096)
def _arg_key(key: str) -> bool:
    """`args`, `cli_args`, `commandArguments`, `program_params`: a key that may hold a program's arguments."""
    return _norm(key) in ARG_KEYS or bool(key_words(key) & _ARG_WORDS)


_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
MAX_DEPTH = 16
MAX_WORDS = 4096


@dataclass(slots=True)
class ArgvLines:
    """Command lines built from argv forms: (path, first word, joined line), and the paths they consumed."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)
    consumed: set[str] = field(default_factory=set)


@lru_cache(maxsize=4096)
def key_words(key: str) -> frozenset[str]:
    """Lower-case words of a key: `shellCommand`, `shell_command` -> {shell, command}."""
    return frozenset(w.lower() for w in _WORD.findall(key)) | {key.replace("_", "").replace("-", "").lower()}


@lru_cache(maxsize=4096)
def commandish(key: str) -> bool:
    """Whether a key says its value is a command (`command`, `cmd`, `argv`, `pre_exec_cmd`, ...)."""
    return bool(key_words(key) & COMMAND_WORDS)


def join(words: list[str]) -> str:
    """Argv words as one shell line that parses back into the same words."""
    return " ".join(shlex.quote(w) for w in words)


def program_name(word: str) -> str:
    """`/usr/bin/rm` -> `rm`; `C:\\Windows\\cmd.exe` -> `cmd`."""
    return word.strip().rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower().removesuffix(".exe")


def _words(value: Any) -> list[str] | None:
    """`value` as argv words: a non-empty list of strings (numbers allowed after the first)."""
    if not isinstance(value, list | tuple) or not value or len(value) > MAX_WORDS or not isinstance(value[0], str):
        return None
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return None
    return [str(v) for v in value]


def _argv(words: list[str], key: str, exec_tool: bool) -> bool:
    """Whether a list of words is one argv (not a list of command lines, tags or file names)."""
    first = words[0].strip()
    if not first or any(c.isspace() for c in first):
        return False  # `["cd /srv", "make"]` is a list of lines, each found as a string
    if commandish(key) or (exec_tool and key.replace("_", "").lower() in ARG_KEYS):
        return True
    return len(words) >= 2 and program_name(first) in KNOWN_PROGRAMS


def _split(text: str) -> list[str] | None:
    try:
        return shlex.split(text)
    except ValueError:
        return None


NONE = ArgvLines()
"""No argv form (shared: never mutated)."""


@lru_cache(maxsize=4096)
def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


_FLAT = frozenset({str, int, float, bool, type(None)})
"""Exact types of flat values (their isinstance checks against ABCs cost more than this lookup)."""


def may_hold_argv(arguments: Any) -> bool:
    """False for flat arguments of strings and numbers without an argument-list key: no argv form there
    (the common case, answered without a walk)."""
    if type(arguments) is not dict:
        return True
    for k, v in arguments.items():
        if type(v) not in _FLAT and (isinstance(v, Mapping | list | tuple) or not isinstance(v, int | float | None)):
            return True
        if _arg_key(k if type(k) is str else str(k)):
            return True
    return False


def argv_lines(arguments: Any, exec_tool: bool) -> ArgvLines:
    """Every argv-form command of the arguments, joined into a line, with the paths it came from."""
    if not may_hold_argv(arguments):
        return NONE
    found = ArgvLines()
    _walk(arguments, "arguments", "", exec_tool, found, 0)
    return found


def _container(v: Any) -> bool:
    t = type(v)
    return t is dict or t is list or (t is not str and isinstance(v, Mapping | list | tuple))


def _walk(value: Any, path: str, key: str, exec_tool: bool, found: ArgvLines, depth: int) -> None:
    if depth > MAX_DEPTH or path in found.consumed:
        return
    if isinstance(value, Mapping):
        if any(_arg_key(str(k)) or _norm(str(k)) == "entrypoint" for k in value):
            _program_and_args(value, path, exec_tool, found)
        for k, v in value.items():
            if _container(v):
                _walk(v, f"{path}.{k}", str(k), exec_tool, found, depth + 1)
    elif isinstance(value, list | tuple):
        words = _words(value)
        if words is not None and _argv(words, key, exec_tool):
            found.lines.append((path, words[0], join(words)))
            found.consumed.add(path)
            found.consumed.update(f"{path}[{i}]" for i in range(len(words)))
            return
        for i, v in enumerate(value):
            if _container(v):
                _walk(v, f"{path}[{i}]", key, exec_tool, found, depth + 1)


def _program_and_args(obj: Mapping[str, Any], path: str, exec_tool: bool, found: ArgvLines) -> None:
    """`{"program": "git", "args": ["push", "-f"]}`, a container's `{"command": ["sh", "-c"], "args": [...]}` or
    `{"Entrypoint": [...], "Cmd": [...]}`: the program (a word, a line or a list) joined with its arguments."""
    norm = {_norm(str(k)): k for k in obj}
    arg_key = next((norm[k] for k in norm if k in ARG_KEYS), None) or next((k for k in obj if _arg_key(str(k))), None)
    if arg_key is None and "entrypoint" in norm:
        arg_key = norm.get("cmd") or norm.get("command")  # Docker: Cmd is the entrypoint's arguments
    if arg_key is None:
        return
    raw = obj[arg_key]
    args = _words(raw) if isinstance(raw, list | tuple) else _split(raw) if isinstance(raw, str) else None
    if args is None and not (isinstance(raw, list | tuple) and not raw):
        return
    args = args or []
    for nk, k in norm.items():
        program = obj[k]
        if k == arg_key or not (nk in PROGRAM_KEYS or commandish(str(k)) or key_words(str(k)) & PROGRAM_KEYS):
            continue
        if isinstance(program, str) and program.strip():
            head = (_split(program) or [program]) if any(c.isspace() for c in program.strip()) else [program]
        elif (head_words := _words(program)) is not None:
            head = head_words
        else:
            continue
        if not (commandish(str(k)) or exec_tool or (args and program_name(head[0]) in KNOWN_PROGRAMS)):
            continue
        where = f"{path}.{k}"
        found.lines.append((where, head[0], join([*head, *args])))
        found.consumed.update({where, f"{path}.{arg_key}", *(f"{path}.{arg_key}[{i}]" for i in range(len(args)))})
        found.consumed.update(f"{where}[{i}]" for i in range(len(head)))
        return


CODE_WORDS = frozenset({"code", "source", "snippet", "script", "program", "expression", "expr", "cell", "src"})
"""A key with one of these words may hold source code (`code`, `python_code`, `jsSnippet`, `cell_source`)."""
LANGUAGE_RUNNERS = {"python": "python3 -c", "py": "python3 -c", "python3": "python3 -c", "ipython": "python3 -c",
                    "jupyter": "python3 -c", "javascript": "node -e", "js": "node -e", "node": "node -e",
                    "nodejs": "node -e", "typescript": "node -e", "ts": "node -e", "deno": "node -e", "ruby": "ruby -e",
                    "rb": "ruby -e", "perl": "perl -e", "php": "php -r", "powershell": "pwsh -c", "pwsh": "pwsh -c",
                    "ps1": "pwsh -c", "lua": "lua -e", "applescript": "osascript -e", "awk": "awk", "bash": "",
                    "sh": "", "shell": "", "zsh": ""}  # fmt: skip
"""Language name -> the command line that runs code given inline ("" for shell code, run as it is)."""
LANGUAGE_KEYS = frozenset({"language", "lang", "runtime", "kernel", "interpreter", "type", "kind", "syntax"})


@lru_cache(maxsize=4096)
def code_key(key: str) -> bool:
    """Whether a key may hold source code to run."""
    return bool(key_words(key) & CODE_WORDS)


def code_line(key: str, code: str, language: str, tool_words: frozenset[str]) -> str | None:
    """The command line that runs `code` found under `key`, when its language is known from the key
    (`python_code`), a sibling `language` value, or the tool's name (`run_python`); else None."""
    words = key_words(key)
    lang = next((w for w in words if w in LANGUAGE_RUNNERS), None)
    if lang is None and language:
        lang = next((w for w in key_words(language.strip()) if w in LANGUAGE_RUNNERS), None)
    if lang is None:
        lang = next((w for w in sorted(tool_words) if w in LANGUAGE_RUNNERS), None)
    if lang is None:
        return None
    runner = LANGUAGE_RUNNERS[lang]
    if lang == "php":
        code = code.strip().removeprefix("<?php").removesuffix("?>")
    return f"{runner} {shlex.quote(code)}" if runner else code


CLI_WORDS = {"kubectl": "kubectl", "kubernetes": "kubectl", "k8s": "kubectl", "oc": "oc", "openshift": "oc",
             "helm": "helm", "terraform": "terraform", "tofu": "tofu", "opentofu": "tofu", "pulumi": "pulumi",
             "git": "git", "gh": "gh", "docker": "docker", "podman": "podman", "aws": "aws", "gcloud": "gcloud",
             "az": "az", "gsutil": "gsutil"}  # fmt: skip
"""A tool (or server) named after a CLI: its subcommand arguments are that CLI's arguments."""
CLI_NAMES = frozenset(CLI_WORDS)
SUBCOMMAND_KEYS = ARG_KEYS | {"command", "cmd", "subcommand", "operation", "verb"}


def cli_lines(arguments: Mapping[str, Any], cli: str) -> list[tuple[str, str, str]]:
    """`kubectl {"command": "delete pod x"}`, `terraform {"args": ["apply", "-destroy"]}`: the CLI's command line
    from its top-level subcommand arguments, as (path, first word, line)."""
    out: list[tuple[str, str, str]] = []
    for key, value in arguments.items():
        if _norm(str(key)) not in SUBCOMMAND_KEYS:
            continue
        words = _words(value) if isinstance(value, list | tuple) else _split(value) if isinstance(value, str) else None
        if not words:
            continue
        if program_name(words[0]) != cli:
            words = [cli, *words]
        out.append((f"arguments.{key}", words[0], join(words)))
    return out
