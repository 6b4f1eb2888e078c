"""Interpreters' inline code: which argument is code, and what the code does.

`inline_effects(name, args)` finds the code of `python -c`, `node -e/-p`, `perl -e/-E`, `ruby -e`,
`php -r`, `lua -e`, `osascript -e`, an `awk` program, or `powershell -Command/-EncodedCommand`,
and returns its effects (see `effects`). Python is parsed with `ast`; PowerShell is read as
cmdlets with parameters; the others at the token level (`interp_lex`). Only a command with inline
code is read, so ordinary commands cost nothing here.
"""

from __future__ import annotations

import base64
import binascii
import re

from bastion.guard.policy.catalogue.effects import (
    ARGV,
    DELETE,
    DELETE_TREE,
    HIDDEN,
    READ,
    Effect,
    effect,
)  # fmt: skip
from bastion.guard.policy.catalogue.interp_lex import lex_effects
from bastion.guard.policy.catalogue.interp_powershell import powershell_effects
from bastion.guard.policy.catalogue.interp_python import python_effects

LANGUAGES = {"python": "python", "python2": "python", "python3": "python", "pypy": "python", "pypy3": "python",
             "node": "node", "nodejs": "node", "bun": "node", "deno": "node", "perl": "perl", "ruby": "ruby",
             "php": "php", "lua": "lua", "luajit": "lua", "osascript": "osascript", "awk": "awk", "gawk": "awk",
             "mawk": "awk", "nawk": "awk", "pwsh": "powershell", "powershell": "powershell", "cmd": "cmd"}  # fmt: skip
"""Program name -> language of its inline code."""
_CODE_OPTIONS = {"python": ("-c",), "node": ("-e", "--eval", "-p", "--print"), "perl": ("-e", "-E"),
                 "ruby": ("-e",), "php": ("-r",), "lua": ("-e",), "osascript": ("-e",)}  # fmt: skip
_AWK_VALUES = frozenset({"-F", "-v", "-f", "--field-separator", "--assign", "--file", "-i", "--include"})
MAX_CODE = 65_536


def inline_code(lang: str, args: tuple[str, ...]) -> str | None:
    """The inline code among an interpreter's arguments, or None (a script file, stdin, a module)."""
    if lang == "awk":
        return _awk_program(args)
    if lang == "powershell":
        return _powershell_command(args)
    if lang == "cmd":
        return _cmd_command(args)
    if lang == "node" and args[:1] == ("eval",) and len(args) > 1:
        return args[1]  # `deno eval CODE`, `bun eval CODE`
    options = _CODE_OPTIONS[lang]
    parts: list[str] = []
    for i, a in enumerate(args[:-1]):
        if a == "--":
            break
        short = a.startswith("-") and not a.startswith("--") and len(a) > 2 and f"-{a[-1]}" in options
        if a in options or short:
            parts.append(args[i + 1])  # perl and ruby take several -e lines
        elif a.startswith(tuple(f"{o}=" for o in options if o.startswith("--"))):
            parts.append(a.split("=", 1)[1])
    return "\n".join(parts) if parts else None


def _awk_program(args: tuple[str, ...]) -> str | None:
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-f", "--file"):
            return None  # the program is in a file
        if a in _AWK_VALUES:
            i += 2
        elif a.startswith("-") and a != "-":
            i += 1
        else:
            return a
    return None


_PS_VALUE_OPTIONS = ("executionpolicy", "ep", "windowstyle", "w", "version", "v", "configurationname", "config",
                     "workingdirectory", "wd", "outputformat", "of", "inputformat", "if", "settingsfile",
                     "psconsolefile", "custompipename", "mta", "sta")  # fmt: skip


def _powershell_command(args: tuple[str, ...]) -> str | None:
    i = 0
    while i < len(args):
        a = args[i]
        low = a.lower().lstrip("-/")
        if not a.startswith(("-", "/")):
            return " ".join(args[i:]) if not a.lower().endswith(".ps1") else None
        if low and "encodedcommand".startswith(low) and len(low) >= 1 and low[0] == "e" and low not in ("ep",):
            if i + 1 >= len(args):
                return None
            try:
                return base64.b64decode(args[i + 1]).decode("utf-16-le")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return "Invoke-Expression $hidden"
        if low and "command".startswith(low):
            return " ".join(args[i + 1 :]) or None
        if low and "file".startswith(low):
            return None
        i += 2 if low in _PS_VALUE_OPTIONS[:14] else 1
    return None


def _cmd_command(args: tuple[str, ...]) -> str | None:
    """`cmd /c STRING` (or `/k`, `/r`): the rest of the line."""
    for i, a in enumerate(args):
        if a.lower() in ("/c", "/k", "/r"):
            return " ".join(args[i + 1 :]) or None
    return None


_HEREDOC = re.compile(r"^(?P<line>[^\n]*?)<<-?[ \t]*(?P<q>['\"]?)(?P<tag>[A-Za-z_][\w]*)(?P=q)(?P<rest>[^\n]*)\n"
                      r"(?P<body>.*?)\n[ \t]*(?P=tag)[ \t]*(?:\n|$)", re.M | re.S)  # fmt: skip


def heredocs(text: str) -> list[tuple[str, str]]:
    """(program, body) of each here-document fed to a program: `python3 - <<'EOF' ... EOF`, `bash <<EOF`, and
    `cat <<EOF | sh` (the body reaches the last program of the pipeline)."""
    out: list[tuple[str, str]] = []
    for m in _HEREDOC.finditer(text):
        rest = m.group("rest")
        reader = rest.rsplit("|", 1)[1].split() if "|" in rest else m.group("line").split("|")[-1].split()
        reader = [w for w in reader if not w.startswith("-") and w not in ("sudo", "env", "exec")]
        if reader:
            out.append((reader[0].rsplit("/", 1)[-1], m.group("body")))
    return out


def without_heredocs(text: str) -> str:
    """`text` with here-document bodies removed: they are input, not commands (judged by `heredocs`)."""
    return _HEREDOC.sub(lambda m: f"{m.group('line')}<<{m.group('tag')}{m.group('rest')}\n", text)


def code_flag(name: str) -> list[str] | None:
    """The option that passes inline code to interpreter `name` (`python3` -> `-c`); None for other programs."""
    lang = LANGUAGES.get(name.lower().removesuffix(".exe"))
    if lang is None or lang in ("awk", "cmd"):
        return None
    if lang == "powershell":
        return ["-Command"]
    return [_CODE_OPTIONS[lang][0]]


def inline_effects(name: str, args: tuple[str, ...], depth: int = 0) -> list[Effect]:
    """What the inline code of `name args...` does; empty when there is none. Never raises."""
    lang = LANGUAGES.get(name.lower().removesuffix(".exe"))
    if lang is None:
        return []
    try:
        code = inline_code(lang, args)
        if not code or len(code) > MAX_CODE:
            return [effect(HIDDEN, f"{name} code longer than {MAX_CODE} characters")] if code else []
        return code_effects(lang, code, depth)
    except Exception:  # code this reader cannot follow is held as hidden, never trusted
        return [effect(HIDDEN, f"{name} code that could not be read")]


def code_effects(lang: str, code: str, depth: int = 0) -> list[Effect]:
    """The effects of `code` in `lang`."""
    if lang == "python":
        found = python_effects(code)
        effects = found if found is not None else lex_effects(code, "python")
    elif lang == "powershell":
        effects = powershell_effects(code, depth)
    elif lang == "cmd":
        effects = cmd_effects(code)
    else:
        effects = lex_effects(code, lang)
    return effects + _enumerated_deletes(code, effects)


_ENUMERATE = re.compile(
    r"\b(?:glob|iglob|rglob|walk|listdir|scandir|iterdir|readdirSync|readdir|opendir|find|each_child|children"
    r"|entries|Get-?ChildItem|gci|ls|dir|Dir\.glob|Dir\.entries|Dir\.children|Find\.find)\s*\(?\s*\[?\s*"
    r"['\"]([^'\"]+)['\"]|\bPath\(\s*['\"]([^'\"]+)['\"]\s*\)\.(?:r?glob|iterdir|walk)\b"
)  # fmt: skip


def _enumerated_deletes(code: str, effects: list[Effect]) -> list[Effect]:
    """A delete of paths known only at run time (`os.remove(f)`, `File.delete(f)`, `array_map("unlink", ...)`) in
    code that enumerates a directory (`os.walk('/srv')`, `Dir.glob("/srv/**/*")`) deletes that tree."""
    if not any(e.kind in (DELETE, DELETE_TREE) and any("*" in w for w in e.words) for e in effects):
        return []
    bases = [m.group(1) or m.group(2) for m in _ENUMERATE.finditer(code)]
    return [effect(DELETE_TREE, base.split("*", 1)[0] or base) for base in bases][:8]


_CMD_SPLIT = re.compile(r"&&|\|\||[&|\n]")


def cmd_effects(code: str) -> list[Effect]:
    """`cmd /c` lines: `del /s`, `rd /s` are tree deletes, `type` reads, other commands are judged as argv."""
    out: list[Effect] = []
    for part in _CMD_SPLIT.split(code):
        words = [w.strip('"') for w in part.split()]
        if not words:
            continue
        head, rest = words[0].lower(), words[1:]
        switches = {w.lower() for w in rest if w.startswith("/")}
        paths = [w for w in rest if not w.startswith("/")]
        if head in ("del", "erase", "rd", "rmdir"):
            tree = "/s" in switches
            out.extend(effect(DELETE_TREE if tree else DELETE, p) for p in paths)
        elif head == "type":
            out.extend(effect(READ, p) for p in paths)
        elif head == "format" and paths:
            out.append(effect(ARGV, "mkfs", paths[0]))
        else:
            out.append(effect(ARGV, *words))
    return out


__all__ = [
    "LANGUAGES",
    "cmd_effects",
    "code_effects",
    "code_flag",
    "heredocs",
    "inline_code",
    "inline_effects",
    "powershell_effects",
    "without_heredocs",
]
