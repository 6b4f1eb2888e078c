"""Inline code of node, perl, ruby, php, awk, lua and osascript, read at the token level.

The code is split into tokens (string literals with their escapes, command literals such as
backticks, `qx{}` and `%x()`, identifier chains `fs.rmSync` / `File::Path::rmtree` / `$ua->post`,
punctuation), calls are found (`name(args)`, and `name args;` for the languages that allow it),
and each call's arguments are evaluated: string parts joined, variables as `*`, arrays as lists.
The callee's last name decides the family: run (a shell string or an argv), delete, read, write,
send, fetch. Strings inside other calls are not commands: `console.log("rm -rf /")` prints.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from bastion.guard.policy.catalogue.effects import (
    ARGV,
    DELETE,
    DELETE_TREE,
    FETCH,
    READ,
    RUN_DOWNLOAD,
    SEND,
    SHELL,
    WRITE,
    Effect,
    effect,
)  # fmt: skip

_PAIRS = {"(": ")", "{": "}", "[": "]", "<": ">"}
_IDENT = re.compile(r"[$@%]?[A-Za-z_][\w]*(?:(?:::|\.|->)[$@]?[A-Za-z_]\w*)*")
_QUOTE_OPS = {"qx": "cmd", "%x": "cmd", "q": "str", "qq": "str", "%q": "str", "%Q": "str", "qw": "words",
              "%w": "words", "%W": "words"}  # fmt: skip
_BAREWORD_CALLS = frozenset({"perl", "ruby", "awk", "lua"})
_EXEC = frozenset({"system", "exec", "execsync", "shell_exec", "passthru", "popen", "proc_open", "execute", "spawn",
                   "spawnsync", "execfile", "execfilesync", "pcntl_exec", "capture2", "capture2e", "capture3",
                   "popen2", "popen3", "popen2e", "pipeline", "execa", "execasync", "execcommand"})  # fmt: skip
_TREE = frozenset({"rmtree", "remove_tree", "rm_rf", "rm_r", "remove_dir", "remove_entry", "remove_entry_secure",
                   "removesync", "emptydirsync", "emptydir", "deltree", "rimraf", "rimrafsync"})  # fmt: skip
_MAYBE_TREE = frozenset({"rmsync", "rm", "rmdirsync", "rmdir", "promises.rm"})
_DELETE = frozenset({"unlink", "unlinksync", "rm_f", "safe_unlink", "delete", "remove"})
_FILE_RECEIVERS = ("file", "dir", "fileutils", "fs", "os", "pathname", "path", "fse", "io")
_READ = frozenset({"readfilesync", "readfile", "createreadstream", "file_get_contents", "read", "readlines",
                   "read_file", "slurp", "binread", "lines", "foreach", "fopen", "open", "readfile_sync"})  # fmt: skip
_WRITE = frozenset({"writefilesync", "writefile", "appendfilesync", "appendfile", "createwritestream",
                    "file_put_contents", "write", "binwrite", "write_file", "copyfilesync", "copyfile"})  # fmt: skip
_SEND = frozenset({"post", "put", "patch", "post_form", "uploadfile", "uploadstring", "uploaddata", "request",
                   "curl_exec", "send", "sendmail", "mail"})  # fmt: skip
_FETCH = frozenset({"fetch", "get", "getstore", "mirror", "get_response", "urlopen", "download", "getcontent"})
_EVAL = frozenset({"eval", "instance_eval", "class_eval", "function", "runinthiscontext", "runinnewcontext",
                   "create_function", "assert", "loadstring", "load", "dostring"})  # fmt: skip
_WRITE_MODE = re.compile(r"^\s*(\+?[>]|\|)|^[wa]\+?b?$|\|\s*$")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "str", "cmd", "id", "p" (punctuation), "end" (statement end)
    text: str


def tokens(code: str, lang: str) -> list[Token]:
    """The tokens of `code`; comments dropped."""
    out: list[Token] = []
    i, n = 0, len(code)
    hash_comments = lang in ("perl", "ruby", "awk", "php", "lua") and lang != "lua"
    while i < n:
        c = code[i]
        if c == "\n" or c == ";":
            out.append(Token("end", c))
            i += 1
        elif c.isspace():
            i += 1
        elif (c == "#" and hash_comments) or (code.startswith("//", i) and lang in ("node", "php")) or (
            code.startswith("--", i) and lang == "lua"):  # fmt: skip
            j = code.find("\n", i)
            i = n if j < 0 else j
        elif code.startswith("/*", i) and lang in ("node", "php"):
            j = code.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in "'\"`":
            j, text = _quoted(code, i + 1, c)
            kind = "cmd" if c == "`" and lang in ("perl", "ruby", "php") else "str"
            out.append(Token(kind, text if c != "`" or lang != "node" else re.sub(r"\$\{[^}]*\}", "*", text)))
            i = j
        elif (m := _IDENT.match(code, i)) and m.group(0) in _QUOTE_OPS and m.end() < n and code[m.end()] in (
            "({[</!|'\""):  # fmt: skip
            op, opener = m.group(0), code[m.end()]
            closer = _PAIRS.get(opener, opener)
            j = code.find(closer, m.end() + 1)
            j = n if j < 0 else j
            body = code[m.end() + 1 : j]
            kind = _QUOTE_OPS[op]
            out.extend(Token("str", w) for w in body.split()) if kind == "words" else out.append(Token(kind, body))
            i = j + 1
        elif m := _IDENT.match(code, i):
            out.append(Token("id", m.group(0).replace("::", ".").replace("->", ".")))
            i = m.end()
        else:
            out.append(Token("p", c))
            i += 1
    return out


def _quoted(code: str, i: int, quote: str) -> tuple[int, str]:
    """(index after the closing quote, the literal's text) for a literal opened just before `i`."""
    buf: list[str] = []
    n = len(code)
    while i < n and code[i] != quote:
        if code[i] == "\\" and i + 1 < n:
            nxt = code[i + 1]
            buf.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            buf.append(code[i])
            i += 1
    return i + 1, "".join(buf)


def _args(toks: list[Token], start: int, bareword: bool) -> tuple[list[list[Token]], int]:
    """The top-level arguments of a call whose argument list starts at `start`."""
    args: list[list[Token]] = [[]]
    depth = 0
    i = start
    if not bareword:
        i += 1  # past "("
    while i < len(toks):
        t = toks[i]
        if t.kind == "p" and t.text in "([{":
            depth += 1
        elif t.kind == "p" and t.text in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (t.kind == "p" and t.text == ","):
            args.append([])
            i += 1
            continue
        elif bareword and depth == 0 and t.kind == "end":
            break
        if not (bareword and depth == 0 and t.kind == "id" and t.text in ("if", "unless", "or", "and", "do")):
            args[-1].append(t)
        i += 1
    return [a for a in args if a], i


_LITERALS = frozenset({"true", "false", "null", "nil", "undef", "None", "undefined"})


def _value(arg: list[Token]) -> str | None:
    """An argument's text: its string parts joined, variables and calls as `*`; None when it has neither."""
    parts = [t.text if t.kind == "str" else "*" for t in arg if t.kind == "str" or (t.kind == "id" and
             t.text not in _LITERALS)]  # fmt: skip
    return "".join(parts) if any(t.kind == "str" for t in arg) else ("*" if parts else None)


def _list(arg: list[Token]) -> list[str]:
    """The string elements of an array literal argument (`['-rf', dir]`)."""
    return [
        t.text if t.kind == "str" else "*" for t in arg if t.kind == "str" or (t.kind == "id" and t.text[:1] in "$@")
    ]


def lex_effects(code: str, lang: str) -> list[Effect]:
    """The effects of inline `code` in `lang` (`node`, `perl`, `ruby`, `php`, `awk`, `lua`, `osascript`)."""
    toks = tokens(code, lang)
    out = [effect(SHELL, t.text) for t in toks if t.kind == "cmd"]
    if lang == "awk":
        out.extend(_awk_pipes(toks))
    if lang == "osascript":
        out.extend(effect(SHELL, m.group(2)) for m in re.finditer(r"do\s+shell\s+script\s+(['\"])(.*?)\1", code, re.S))
        return out
    toks = _substituted(toks)
    for i, t in enumerate(toks):
        if t.kind != "id":
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is not None and nxt.kind == "p" and nxt.text == "(":
            args, _ = _args(toks, i + 1, bareword=False)
        elif lang in _BAREWORD_CALLS and nxt is not None and nxt.kind in ("str", "id", "cmd"):
            args, _ = _args(toks, i + 1, bareword=True)
        else:
            continue
        out.extend(_call(t.text, args, lang))
    reads = [e.words[0] for e in out if e.kind == READ and e.words]
    return [effect(SEND, e.words[0], reads[0]) if e.kind == SEND and len(e.words) == 1 and reads else e for e in out]


def _substituted(toks: list[Token]) -> list[Token]:
    """Variables assigned a string (`cmd = "rm -rf /x"`, `my $d = '/srv'`, `const d = "/srv"`) replaced by it where
    they are read, so `system(cmd)` is judged as `system("rm -rf /x")`."""
    bound: dict[str, str] = {}
    for i in range(len(toks) - 2):
        a, eq, v = toks[i], toks[i + 1], toks[i + 2]
        if a.kind == "id" and eq.kind == "p" and eq.text == "=" and v.kind == "str":
            after = toks[i + 3] if i + 3 < len(toks) else None
            if after is None or after.kind == "end" or (after.kind == "p" and after.text in ",;)}"):
                bound.setdefault(a.text, v.text)
    if not bound:
        return toks
    out: list[Token] = []
    for i, t in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        assigned = nxt is not None and nxt.kind == "p" and nxt.text == "="
        out.append(Token("str", bound[t.text]) if t.kind == "id" and t.text in bound and not assigned else t)
    return out


_CALLBACKS = frozenset(
    {"call_user_func", "call_user_func_array", "array_map", "array_walk", "usort", "forward_static_call"}
)


def _call(callee: str, args: list[list[Token]], lang: str) -> Iterator[Effect]:
    chain = callee.lower().lstrip("$@%")
    last = chain.rsplit(".", 1)[-1]
    if last in _CALLBACKS and args and len(args[0]) == 1 and args[0][0].kind == "str":
        # `call_user_func("system", "rm -rf /x")`, `array_map("unlink", glob("/srv/*"))`: the named function runs
        yield from _call(args[0][0].text, args[1:], lang)
        return
    values = [_value(a) for a in args]
    first = values[0] if values else None
    idents = {t.text.lower() for a in args for t in a if t.kind == "id"}
    strings = [t.text for a in args for t in a if t.kind == "str"]
    url = next((s for s in strings if "://" in s), None)
    receiver = chain.rsplit(".", 1)[0] if "." in chain else ""
    if last in _EXEC and first is not None and not (last == "exec" and receiver and lang == "node" and not
                                                    receiver.endswith(("child_process", "cp", "proc"))):  # fmt: skip
        arrays = [_list(a) for a in args[1:] if any(t.kind == "p" and t.text == "[" for t in a)]
        if last in ("spawn", "spawnsync", "execfile", "execfilesync", "execa", "pcntl_exec") or arrays:
            yield effect(ARGV, first, *(arrays[0] if arrays else []))
        elif len(values) > 1 and lang in ("perl", "ruby") and all(v is not None for v in values):
            yield effect(ARGV, *(v or "*" for v in values))
        else:
            yield effect(SHELL, first)
    elif last in _TREE and first is not None:
        yield effect(DELETE_TREE, *(v for v in values if v) if lang == "perl" else (first,))
    elif last in _MAYBE_TREE and first is not None and (lang == "node" or receiver in _FILE_RECEIVERS):
        tree = "recursive" in idents or any(s in ("-r", "-rf", "-fr") for s in strings)
        yield effect(DELETE_TREE if tree else DELETE, first)
    elif last in _DELETE and first is not None and (lang in ("perl", "php", "lua") or receiver.endswith(
            _FILE_RECEIVERS)):  # fmt: skip
        for v in values if lang == "perl" else [first]:
            if v:
                yield effect(DELETE, v)
    elif last in _EVAL and (url or idents & _FETCH or any(t.text.lower().endswith(tuple(_FETCH)) for a in args
                                                          for t in a if t.kind == "id")):  # fmt: skip
        yield effect(RUN_DOWNLOAD, url or "*", lang)
    elif last in _SEND and (url or lang == "php") and (last != "request" or re.search(
            r"(?i)\b(post|put|patch|delete)\b", " ".join(strings))):  # fmt: skip
        yield effect(SEND, url or "*")
    elif last in ("fetch", "request") and url:
        method = re.search(r"(?i)^(post|put|patch|delete)$", " ".join(s for s in strings if "://" not in s))
        yield effect(SEND if method or "body" in idents else FETCH, url)
    elif last in _FETCH and url:
        yield effect(FETCH, url, *([values[1]] if last in ("getstore", "mirror") and len(values) > 1 and values[1]
                                   else []))  # fmt: skip
    elif last in _READ and first is not None and "://" not in first:
        yield from _open(last, values, lang, receiver)
    elif last in _WRITE and first is not None and (lang in ("node", "php") or receiver.endswith(_FILE_RECEIVERS)):
        yield effect(WRITE, values[1] if last.startswith("copy") and len(values) > 1 and values[1] else first)


def _open(last: str, values: list[str | None], lang: str, receiver: str) -> Iterator[Effect]:
    if lang == "perl" and last == "open":
        mode_path = [v for v in values[1:] if v]
        if not mode_path:
            return
        spec = " ".join(mode_path)
        if "|" in spec:
            yield effect(SHELL, re.sub(r"^\s*[-|]+\s*|\s*\|\s*$", "", mode_path[-1]))
        else:
            path = mode_path[-1].lstrip("<>+ ")
            yield effect(WRITE if ">" in spec else READ, path)
        return
    if last in ("open", "read", "readlines", "lines", "foreach", "binread") and lang not in ("php",) and not (
            receiver.endswith(_FILE_RECEIVERS)):  # fmt: skip
        return
    path = values[0] or "*"
    mode = values[1] if len(values) > 1 and values[1] else "r"
    yield effect(WRITE if last in ("fopen", "open") and _WRITE_MODE.search(mode) else READ, path)


def _awk_pipes(toks: list[Token]) -> Iterator[Effect]:
    """`print x | "cmd"` and `"cmd" | getline`: awk hands the string to a shell."""
    for i, t in enumerate(toks):
        if t.kind != "p" or t.text != "|":
            continue
        after = toks[i + 1] if i + 1 < len(toks) else None
        before = toks[i - 1] if i else None
        if after is not None and after.kind == "str":
            yield effect(SHELL, f"awk | {after.text}")  # what awk prints is the command's input
        elif after is not None and after.kind == "id" and after.text == "getline" and before and before.kind == "str":
            yield effect(SHELL, before.text)
