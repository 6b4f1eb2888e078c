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
import shlex

from bastion.guard.policy.catalogue.effects import (
    ARGV,
    DELETE,
    DELETE_TREE,
    FETCH,
    HIDDEN,
    READ,
    RUN_DOWNLOAD,
    SEND,
    SHELL,
    WRITE,
    Effect,
    effect,
)  # fmt: skip
from bastion.guard.policy.catalogue.interp_lex import lex_effects
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
        return found if found is not None else lex_effects(code, "python")
    if lang == "powershell":
        return powershell_effects(code, depth)
    if lang == "cmd":
        return cmd_effects(code)
    return lex_effects(code, lang)


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


_PS_WORD = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"`]|`.)*\"|[;|\n{}()]|[^\s;|{}()'\"]+")
_PS_SWITCHES = ("recurse", "force", "usebasicparsing", "passthru", "wait", "nonewwindow", "confirm", "whatif",
                "verbose", "raw", "append", "noprofile", "noninteractive")  # fmt: skip
_PS_DELETE = frozenset({"remove-item", "rm", "del", "erase", "rd", "rmdir", "ri"})
_PS_WEB = frozenset({"invoke-webrequest", "iwr", "invoke-restmethod", "irm", "curl", "wget"})
_PS_READ = frozenset({"get-content", "gc", "cat", "type", "select-string", "sls", "import-csv", "get-item"})
_PS_WRITE = frozenset({"set-content", "sc", "add-content", "ac", "out-file", "export-csv"})
_PS_NET = re.compile(r"\.(DownloadString|DownloadFile|DownloadData|UploadFile|UploadString|UploadData|UploadValues)"
                     r"\s*\(\s*['\"]([^'\"]*)['\"]\s*(?:,\s*['\"]([^'\"]*)['\"])?", re.I)  # fmt: skip


def _ps_unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1].replace("''", "'") if word[0] == "'" else re.sub(r"`(.)", r"\1", word[1:-1])
    return word


def powershell_effects(code: str, depth: int = 0) -> list[Effect]:
    """Cmdlets of PowerShell `code` with their parameters (aliases and abbreviated parameter names included)."""
    out: list[Effect] = []
    statements: list[list[str]] = [[]]
    for w in _PS_WORD.findall(code):
        if w in (";", "|", "\n", "{", "}", "(", ")"):
            statements.append([])
        else:
            statements[-1].append(w)
    for m in _PS_NET.finditer(code):
        kind = m.group(1).lower()
        url = m.group(2)
        if kind.startswith("upload"):
            out.append(effect(SEND, url, m.group(3) or "") if kind == "uploadfile" else effect(SEND, url))
        else:
            out.append(effect(FETCH, url, *([m.group(3)] if kind == "downloadfile" and m.group(3) else [])))
    lowered = code.lower()
    downloads = [e.words[0] for e in out if e.kind == FETCH]
    if re.search(r"\b(iex|invoke-expression)\b", lowered) and (downloads or re.search(r"\b(iwr|irm|invoke-web"
                                                                                      r"request|invoke-restmethod)\b",
                                                                                      lowered)):  # fmt: skip
        out.append(effect(RUN_DOWNLOAD, downloads[0] if downloads else "*", "powershell"))
    for words in statements:
        if words:
            out.extend(_cmdlet(words, depth))
    return out


def _cmdlet(words: list[str], depth: int) -> list[Effect]:
    head = _ps_unquote(words[0]).lower()
    rest = words[1:]
    if head == "&" and rest:
        return [effect(ARGV, *(_ps_unquote(w) for w in rest))]
    named: dict[str, str] = {}
    switches: set[str] = set()
    positional: list[str] = []
    i = 0
    while i < len(rest):
        w = rest[i]
        if w.startswith("-") and len(w) > 1 and re.fullmatch(r"-[A-Za-z][\w]*:?", w):
            p = w[1:].rstrip(":").lower()
            if any(s.startswith(p) for s in _PS_SWITCHES):
                switches.add(next(s for s in _PS_SWITCHES if s.startswith(p)))
                i += 1
                continue
            named[p] = _ps_unquote(rest[i + 1]) if i + 1 < len(rest) else ""
            i += 2
        else:
            positional.append(_ps_unquote(w))
            i += 1

    def param(*names: str) -> str | None:
        return next((v for k, v in named.items() if any(n.startswith(k) for n in names)), None)

    if head in _PS_DELETE:
        paths = [p for p in [param("path", "literalpath"), *positional] if p]
        return [effect(DELETE_TREE if "recurse" in switches else DELETE, p) for p in paths]
    if head in _PS_WEB:
        url = param("uri") or (positional[0] if positional else "*")
        method = (param("method") or "").lower()
        infile, body = param("infile"), param("body")
        if method in ("post", "put", "patch", "delete") or infile or body:
            return [effect(SEND, url, infile or "")]
        return [effect(FETCH, url, *([param("outfile") or ""] if param("outfile") else []))]
    if head in ("invoke-expression", "iex") and positional and depth < 3:
        return powershell_effects(" ".join(positional), depth + 1)
    if head in ("start-process", "saps", "start"):
        program = param("filepath") or (positional[0] if positional else None)
        arglist = param("argumentlist") or (" ".join(positional[1:]) if len(positional) > 1 else "")
        if program:
            try:
                return [effect(ARGV, program, *shlex.split(arglist.replace(",", " ")))]
            except ValueError:
                return [effect(ARGV, program, *arglist.split())]
    if head in _PS_READ:
        return [effect(READ, p) for p in [param("path", "literalpath"), *positional] if p]
    if head in _PS_WRITE:
        return [effect(WRITE, p) for p in [param("path", "literalpath", "filepath"), *positional[:1]] if p]
    if re.fullmatch(r"[a-z][\w.]*", head) and head not in ("new-object", "write-host", "write-output", "echo"):
        return [effect(ARGV, _ps_unquote(words[0]), *(_ps_unquote(w) for w in rest))]
    return []


__all__ = ["LANGUAGES", "SHELL", "WRITE", "code_effects", "inline_code", "inline_effects", "powershell_effects"]
