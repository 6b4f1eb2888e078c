"""PowerShell code (`powershell -Command`, `-EncodedCommand`, `Invoke-Expression`) read as cmdlets.

Statements are split on `;`, `|`, newlines and brackets; each is a cmdlet (aliases included:
`rm`, `del`, `iwr`, `iex`, `gc`) with named parameters (abbreviated: `-r` is `-Recurse`, `-fo`
is `-Force`) and positional ones. `Get-ChildItem X | Remove-Item` deletes what is listed; .NET
calls (`[IO.Directory]::Delete(p, $true)`, `WebClient.DownloadString`) are read too.
"""

from __future__ import annotations

import re
import shlex

from bastion.guard.policy.catalogue.effects import (
    ARGV,
    DELETE,
    DELETE_TREE,
    FETCH,
    READ,
    RUN_DOWNLOAD,
    SEND,
    WRITE,
    Effect,
    effect,
)  # fmt: skip

_PS_WORD = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"`]|`.)*\"|[;|\n{}()]|[^\s;|{}()'\"]+")
_PS_SWITCHES = ("recurse", "force", "usebasicparsing", "passthru", "wait", "nonewwindow", "confirm", "whatif",
                "verbose", "raw", "append", "noprofile", "noninteractive")  # fmt: skip
_PS_DELETE = frozenset({"remove-item", "rm", "del", "erase", "rd", "rmdir", "ri"})
_PS_WEB = frozenset({"invoke-webrequest", "iwr", "invoke-restmethod", "irm", "curl", "wget"})
_PS_READ = frozenset({"get-content", "gc", "cat", "type", "select-string", "sls", "import-csv", "get-item"})
_PS_WRITE = frozenset({"set-content", "sc", "add-content", "ac", "out-file", "export-csv"})
_PS_LIST = frozenset({"get-childitem", "gci", "ls", "dir", "get-item", "gi"})
_PS_DOTNET = re.compile(r"\[(?:System\.)?IO\.(Directory|File)\]::(Delete|ReadAll\w*|WriteAll\w*|AppendAll\w*)"
                        r"\(\s*['\"]([^'\"]+)['\"]\s*(,\s*\$true)?", re.I)  # fmt: skip
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
    piped: list[bool] = [False]
    for w in _PS_WORD.findall(code):
        if w in (";", "|", "\n", "{", "}", "(", ")"):
            statements.append([])
            piped.append(w == "|")
        else:
            statements[-1].append(w)
    for m in _PS_DOTNET.finditer(code):
        kind, path, recurse = m.group(2).lower(), m.group(3), m.group(4)
        out.append(effect(READ if kind.startswith("read") else WRITE if kind.startswith(("write", "append")) else
                          DELETE_TREE if recurse or m.group(1).lower() == "directory" else DELETE, path))  # fmt: skip
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
    previous: list[str] = []
    for words, after_pipe in zip(statements, piped, strict=True):
        if not words:
            continue
        found = _cmdlet(words, depth)
        head = _ps_unquote(words[0]).lower()
        if not found and after_pipe and head in _PS_DELETE and previous and previous[0].lower() in _PS_LIST:
            # `Get-ChildItem C:/data -Recurse | Remove-Item`: what is listed is deleted
            listed = [_ps_unquote(w) for w in previous[1:] if not w.startswith("-")]
            found = [effect(DELETE_TREE, p) for p in listed[:1] or ["*"]]
        out.extend(found)
        previous = words
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
