"""`python -c CODE` understood with `ast`: the calls it makes, with their arguments evaluated where constant.

Imports and aliases are followed (`from shutil import rmtree as r`, `__import__('os')`,
`getattr(os, 'system')`), simple assignments are remembered, strings are folded through `+`, `%`,
f-strings, `.format`, `.join`, `os.path.join` and `Path(...) / ...`; a part that is not constant
reads as `*`. Code that does not parse is left to the token-level reading of `interp_lex`.
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs
import posixpath
from collections.abc import Iterator

from bastion.guard.policy.catalogue.effects import (
    ARGV,
    CHMOD,
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

MAX_CODE_DEPTH = 3
_SHELL_CALLS = frozenset({"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                          "commands.getoutput", "asyncio.create_subprocess_shell", "platform.popen"})  # fmt: skip
_EITHER_CALLS = frozenset({"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                           "subprocess.Popen", "pty.spawn", "sh.Command"})  # fmt: skip
_ARGV_FROM = {"os.execv": 1, "os.execve": 1, "os.execvp": 1, "os.execvpe": 1, "os.spawnv": 2, "os.spawnve": 2,
              "os.spawnvp": 2, "os.spawnvpe": 2, "os.posix_spawn": 1, "os.posix_spawnp": 1}  # fmt: skip
_ARGS_FROM = {"os.execl": 2, "os.execle": 2, "os.execlp": 2, "os.execlpe": 2, "os.spawnl": 3, "os.spawnle": 3,
              "os.spawnlp": 3, "os.spawnlpe": 3, "asyncio.create_subprocess_exec": 0}  # fmt: skip
_DELETE_TREE = frozenset({"shutil.rmtree", "distutils.dir_util.remove_tree"})
_DELETE = frozenset({"os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.truncate"})
_READ = frozenset({"open", "io.open", "codecs.open", "builtins.open", "os.open", "tarfile.open", "zipfile.ZipFile",
                   "shutil.make_archive", "linecache.getlines", "fileinput.input"})  # fmt: skip
_COPY = frozenset({"shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "shutil.move", "os.rename",
                   "os.replace", "os.symlink", "os.link"})  # fmt: skip
_HTTP_SEND = ("post", "put", "patch", "delete", "request")
_HTTP_LIBS = ("requests", "httpx", "urllib3", "aiohttp", "session")
_DECODERS = frozenset({"base64.b64decode", "base64.b32decode", "base64.urlsafe_b64decode", "base64.decodebytes",
                       "codecs.decode", "zlib.decompress", "bytes.fromhex", "binascii.unhexlify",
                       "binascii.a2b_base64", "marshal.loads", "pickle.loads", "bz2.decompress", "lzma.decompress",
                       "gzip.decompress"})  # fmt: skip
_PATH_READ = frozenset({"read_text", "read_bytes", "open", "iterdir"})
_PATH_WRITE = frozenset({"write_text", "write_bytes", "touch", "symlink_to", "hardlink_to"})
_PATH_DELETE = frozenset({"unlink", "rmdir"})


def python_effects(code: str, depth: int = 0) -> list[Effect] | None:
    """The effects of Python source `code`; None when it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    reader = _Reader(depth)
    reader.collect(tree)
    out = list(reader.effects(tree))
    reads = [e.words[0] for e in out if e.kind == READ and e.words]
    return [effect(SEND, e.words[0], reads[0]) if e.kind == SEND and len(e.words) == 1 and reads else e for e in out]


class _Reader:
    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.aliases: dict[str, str] = {}
        self.values: dict[str, ast.expr] = {}

    def collect(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.values.setdefault(node.targets[0].id, node.value)
            elif isinstance(node, ast.NamedExpr):
                self.values.setdefault(node.target.id, node.value)
            elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
                self.values.setdefault(node.optional_vars.id, node.context_expr)

    def name(self, node: ast.expr, hops: int = 0) -> str:
        """The dotted name a callee resolves to (`sh.rmtree` with `import shutil as sh` -> `shutil.rmtree`)."""
        if hops > 8:
            return ""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            bound = self.values.get(node.id)
            return self.name(bound, hops + 1) if bound is not None and not isinstance(bound, ast.Constant) else node.id
        if isinstance(node, ast.Attribute):
            base = self.name(node.value, hops + 1)
            return f"{base}.{node.attr}" if base else node.attr
        if isinstance(node, ast.Call):
            callee = self.name(node.func, hops + 1)
            first = self.text(node.args[0]) if node.args else None
            if callee in ("__import__", "importlib.import_module", "builtins.__import__") and first:
                return first
            if callee in ("getattr", "builtins.getattr") and len(node.args) >= 2:
                attr = self.text(node.args[1])
                return f"{self.name(node.args[0], hops + 1)}.{attr}" if attr else ""
            return f"{callee}()"
        if isinstance(node, ast.Subscript):
            return self.name(node.value, hops + 1)
        return ""

    def text(self, node: ast.expr | None, hops: int = 0) -> str | None:
        """`node` as a string where it is constant (unknown parts as `*`); None when nothing is known."""
        if node is None or hops > 12:
            return None
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bytes):
                return node.value.decode("utf-8", "replace")
            return node.value if isinstance(node.value, str) else str(node.value) if node.value is not None else None
        if isinstance(node, ast.Name):
            bound = self.values.get(node.id)
            return self.text(bound, hops + 1) if bound is not None else None
        if isinstance(node, ast.JoinedStr):
            return "".join(self.text(v, hops + 1) or "*" for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.text(node.value, hops + 1) or "*"
        if isinstance(node, ast.BinOp):
            left, right = self.text(node.left, hops + 1), self.text(node.right, hops + 1)
            if isinstance(node.op, ast.Add) and (left or right):
                return (left or "*") + (right or "*")
            if isinstance(node.op, ast.Div) and left:
                return posixpath.join(left, right or "*")
            if isinstance(node.op, ast.Mod) and left:
                return left.replace("%s", right or "*").replace("%d", right or "*")
            return None
        if isinstance(node, ast.Call):
            return self._call_text(node, hops)
        if isinstance(node, ast.List | ast.Tuple):
            parts = [self.text(e, hops + 1) or "*" for e in node.elts]
            return " ".join(parts) if parts else None
        return None

    def _call_text(self, node: ast.Call, hops: int) -> str | None:
        callee = self.name(node.func)
        args = [self.text(a, hops + 1) for a in node.args]
        if callee.endswith(("os.path.join", "posixpath.join")) or callee in (
            "pathlib.Path",
            "Path",
            "pathlib.PurePath",
        ):
            return posixpath.join(*(a or "*" for a in args)) if args else None
        if callee.endswith(("expanduser", "abspath", "realpath", "normpath", "fspath", "str", ".strip")) and args:
            return args[0]
        if isinstance(node.func, ast.Attribute):
            base = self.text(node.func.value, hops + 1)
            if node.func.attr == "join" and base is not None and node.args:
                items = node.args[0]
                elts = items.elts if isinstance(items, ast.List | ast.Tuple) else []
                return base.join(self.text(e, hops + 1) or "*" for e in elts) if elts else None
            if node.func.attr == "format" and base is not None:
                out = base
                for a in args:
                    out = out.replace("{}", a or "*", 1)
                return out
            if node.func.attr in ("decode", "strip", "lower", "encode") and base is not None:
                return base
            if node.func.attr in ("expanduser", "resolve", "absolute") and base is not None:
                return base
        decoded = self.decoded(node)
        return decoded

    def decoded(self, node: ast.Call) -> str | None:
        """The text a `base64.b64decode('...')` / `bytes.fromhex('...')` call yields, when constant."""
        callee = self.name(node.func)
        if callee not in _DECODERS or not node.args:
            return None
        raw = self.text(node.args[0])
        if raw is None:
            return None
        codec = (self.text(node.args[1]) or "") if len(node.args) > 1 else ""
        try:
            if codec.replace("_", "").lower() == "rot13":
                return codecs.decode(raw, "rot13")
            if "hex" in callee or codec == "hex":
                return bytes.fromhex(raw).decode("utf-8")
            if "b64" in callee or "base64" in callee or callee == "base64.decodebytes":
                return base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        return None

    def effects(self, tree: ast.AST) -> Iterator[Effect]:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                yield from self.call(node)

    def call(self, node: ast.Call) -> Iterator[Effect]:
        callee = self.name(node.func)
        last = callee.rsplit(".", 1)[-1]
        args = node.args
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        first = args[0] if args else kw.get("args") or kw.get("path") or kw.get("file") or kw.get("url")
        if callee in _SHELL_CALLS or callee.endswith(".getoutput"):
            yield effect(SHELL, self.text(first) or "*")
        elif callee in _EITHER_CALLS or (callee.startswith("subprocess.") and last[:1].isupper()):
            yield from self.run(first)
        elif callee in _ARGV_FROM and len(args) > _ARGV_FROM[callee]:
            yield from self.run(args[_ARGV_FROM[callee]], argv_only=True)
        elif callee in _ARGS_FROM:
            start = _ARGS_FROM[callee]
            yield effect(ARGV, *(self.text(a) or "*" for a in args[start - 1 if start else 0 :][:64]))
        elif callee in _DELETE_TREE:
            yield effect(DELETE_TREE, self.text(first) or "*")
        elif callee in _DELETE:
            yield effect(DELETE, self.text(first) or "*")
        elif callee in ("os.chmod", "os.lchmod") and len(args) >= 2 and isinstance(args[1], ast.Constant):
            yield effect(CHMOD, oct(int(args[1].value))[2:] if isinstance(args[1].value, int) else "*",
                         self.text(args[0]) or "*")  # fmt: skip
        elif callee in _COPY and len(args) >= 2:
            src, dst = self.text(args[0]) or "*", self.text(args[1]) or "*"
            yield effect(READ, src)
            yield effect(WRITE, dst)
            if callee in ("shutil.move", "os.rename", "os.replace"):
                yield effect(DELETE_TREE if callee == "shutil.move" else DELETE, src)
        elif callee in _READ or (last == "open" and callee.startswith(("io.", "codecs."))):
            yield from self.open(first, args[1] if len(args) > 1 else kw.get("mode"))
        elif last in _PATH_READ | _PATH_WRITE | _PATH_DELETE and isinstance(node.func, ast.Attribute):
            yield from self.path_method(node, last)
        elif callee in ("eval", "exec", "compile", "builtins.exec", "builtins.eval") and args:
            yield from self.inner_code(args[0])
        elif callee.endswith(("urlretrieve",)) and args:
            yield effect(FETCH, self.text(args[0]) or "*", *([self.text(args[1]) or "*"] if len(args) > 1 else []))
        elif callee.endswith(("urlopen", "Request")) and first is not None:
            sends = len(args) > 1 or "data" in kw or "method" in kw
            yield effect(SEND if sends else FETCH, self.text(first) or "*")
        elif any(f".{lib}" in f".{callee}" for lib in _HTTP_LIBS) and last in (*_HTTP_SEND, "get", "head", "stream"):
            url = self.text(args[1] if last == "request" and len(args) > 1 else first) or "*"
            method = (self.text(args[0]) or "").lower() if last == "request" and args else last
            yield effect(SEND if method in _HTTP_SEND else FETCH, url)
        elif (last in ("sendmail", "send_message", "storbinary", "sendall", "sendto", "sendfile") or (
                last == "send" and "socket" in self.aliases)) and args:  # fmt: skip
            yield effect(SEND, "*")

    def run(self, node: ast.expr | None, argv_only: bool = False) -> Iterator[Effect]:
        if isinstance(node, ast.List | ast.Tuple):
            yield effect(ARGV, *(self.text(e) or "*" for e in node.elts[:256]))
        elif node is not None:
            text = self.text(node)
            if text is not None:
                yield effect(ARGV, text) if argv_only else effect(SHELL, text)
            else:
                yield effect(HIDDEN, "a command built at run time")

    def open(self, target: ast.expr | None, mode_node: ast.expr | None) -> Iterator[Effect]:
        path = self.text(target)
        if path is None:
            return
        mode = self.text(mode_node) or "r"
        yield effect(WRITE if any(c in mode for c in "wax+") else READ, path)

    def path_method(self, node: ast.Call, method: str) -> Iterator[Effect]:
        assert isinstance(node.func, ast.Attribute)
        receiver = node.func.value
        if "Path" not in self.name(receiver) and not isinstance(receiver, ast.BinOp):
            if method in _PATH_DELETE and not node.args:
                yield effect(DELETE, "*")  # `p.unlink()` of a path known at run time (a loop over a listing)
            return
        path = self.text(receiver)
        if path is None:
            return
        if method in _PATH_DELETE:
            yield effect(DELETE, path)
        elif method in _PATH_WRITE:
            yield effect(WRITE, path)
        elif method == "open":
            yield from self.open(receiver, node.args[0] if node.args else None)
        else:
            yield effect(READ, path)

    def inner_code(self, node: ast.expr) -> Iterator[Effect]:
        """`exec(...)` / `eval(...)`: constant or decodable code is read recursively; downloaded code runs."""
        if isinstance(node, ast.Call):
            inner_callee = self.name(node.func)
            if any(w in inner_callee for w in ("urlopen", "requests.get", "httpx.get", "urlretrieve")):
                yield effect(RUN_DOWNLOAD, (self.text(node.args[0]) if node.args else None) or "*", "python")
                return
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Call) and "urlopen" in self.name(sub.func)) or (
                    isinstance(sub, ast.Call) and self.name(sub.func).startswith(("requests.", "httpx."))):  # fmt: skip
                    yield effect(RUN_DOWNLOAD, (self.text(sub.args[0]) if sub.args else None) or "*", "python")
                    return
        code = self.text(node)
        decoder = isinstance(node, ast.Call) and any(self.name(s.func) in _DECODERS for s in ast.walk(node)
                                                     if isinstance(s, ast.Call))  # fmt: skip
        if code is not None and "*" not in code and self.depth < MAX_CODE_DEPTH:
            inner = python_effects(code, self.depth + 1)
            if inner is not None:
                yield from inner
                return
        if decoder:
            yield effect(HIDDEN, "python runs decoded code")
