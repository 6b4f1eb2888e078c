"""What detectors see of one call: tool words, every argument value, and what each value parses as.

Which parser applies to a string is decided by trying, guided by where the string is:
- shell: strings under a command-like key (`command`, `cmd`, `cli_command`, ...), or any non-prose
  string of a tool whose name says it executes (`run_command`, `start_process`, `shell_exec`);
- SQL: any string whose first word is a statement keyword and that a SQL parser accepts, except
  prose fields (`body`, `content`, `message`, ...) of tools whose name does not say SQL;
- URL: a whole string value with a scheme (`https://...`), or a host-like value under a URL key, as a client
  would read it (`net_url.machine_url`: tabs, newlines and controls gone);
- path: strings under a path-like key, or absolute / `~` values without whitespace.
Free text (a document's content, an issue body) is never executed as a command: `rm -rf` in a
document is text. Secrets and injection are looked for in every string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar, overload

from bastion.guard.policy.catalogue.base import ScalarValue, ScanContext, StringValue
from bastion.guard.policy.catalogue.commands import (
    CLI_NAMES,
    CLI_WORDS,
    LANGUAGE_KEYS,
    argv_lines,
    cli_lines,
    code_key,
    code_line,
    commandish,
)
from bastion.guard.policy.catalogue.machine import machine_path
from bastion.guard.policy.catalogue.needles import NEEDLES
from bastion.guard.policy.catalogue.net_url import machine_url
from bastion.guard.policy.catalogue.shell_parse import Script, parse_shell
from bastion.guard.policy.catalogue.sql_parse import STATEMENT_KEYWORDS, SqlScript, parse_sql

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
COMMAND_KEYS = frozenset({"command", "cmd", "commandline", "script", "shell", "clicommand", "bash", "sh", "exec"})
EXEC_TOOL_WORDS = frozenset({"exec", "execute", "shell", "command", "commands", "terminal", "bash", "process", "cli",
                             "cmd", "ssh", "sh", "console", "run"})  # fmt: skip
PROSE_KEYS = frozenset({"content", "body", "text", "message", "description", "title", "comment", "note", "notes",
                        "subject", "summary", "observations", "html", "markdown", "contents", "newtext", "oldtext",
                        "prompt", "question", "answer", "reason", "caption", "element", "name", "label"})  # fmt: skip
SQL_TOOL_WORDS = frozenset({"sql", "query", "queries", "database", "db", "postgres", "postgresql", "mysql", "sqlite",
                            "duckdb", "snowflake", "bigquery", "mssql", "oracle", "clickhouse", "redshift", "mariadb",
                            "supabase", "neon", "tursodb", "libsql"})  # fmt: skip
SQL_KEYS = frozenset({"sql", "query", "statement", "statements", "stmt", "sqlquery", "querytext"})
_AMBIGUOUS_SQL_KEYS = frozenset({"query", "querytext"})
_SEARCH_WORDS = frozenset({"search", "find", "lookup", "web", "google", "bing", "issues", "docs", "memory", "semantic"})
PATH_KEY = re.compile(
    r"(path|file|dir|folder|directory|filename)s?$"
    r"|^(source|destination|dest|src|dst|target|cwd|workdir|root|location|output|outfile|input)$"
)
URL_KEYS = frozenset(
    {"url", "uri", "urls", "endpoint", "href", "link", "webhook", "webhookurl", "baseurl", "targeturl"}
)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://\S*$")
_HOSTLIKE = re.compile(r"^[\w.\-]+\.[a-zA-Z]{2,}(:\d+)?(/\S*)?$")
_ABS = re.compile(r"^(~[\w.\-]*|/|\\\\)")
_ABS_WORD = re.compile(r"(~[\w.\-]*|/|\\\\)\S*\Z")
"""An absolute or `~` value without whitespace."""


SQL_NEEDLES = NEEDLES.add(STATEMENT_KEYWORDS)
"""`parse_sql` accepts a text only when its first word is a statement keyword; that word's letters stand in the text
unchanged (unwrapping executable comments and splitting `GO` batches only put spaces and `;` where markers were), so
a text holding none of the keywords, lower-cased, is never SQL."""


T = TypeVar("T")


class cached_property(Generic[T]):
    """`functools.cached_property` without its lock (Python 3.11 takes an `RLock` on every first
    access, a fifth of a scan's time): computed on first access, then read from the instance.

    A `CallView` belongs to one scan on one thread, so the lock guarded nothing here."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | cached_property[T]:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.name] = value
        return value


@lru_cache(maxsize=4096)
def name_words(name: str) -> frozenset[str]:
    """The lower-case words of an identifier: `createRefund`, `create_refund`, `git-push` -> words."""
    return frozenset(w.lower() for w in _WORD.findall(name)) | frozenset(re.split(r"[^a-z0-9]+", name.lower())) - {""}


@lru_cache(maxsize=4096)
def tool_and_server_words(tool: str, server: str) -> frozenset[str]:
    """`name_words(tool) | name_words(server)`, one object per pair (its hash computed once, for caches keyed
    by it)."""
    return name_words(tool) | name_words(server)


COMMAND, CODE = 1, 2
_UNDER_COMMANDS = re.compile(r"\.(scripts?|commands|cmds|hooks|githooks|entrypoints)(\[\d+\])?\.", re.I)
"""A string one level under a key that holds named commands (npm `scripts`, `hooks`)."""


@lru_cache(maxsize=4096)
def key_role(key: str) -> int:
    """What a key's value may be: COMMAND (`command`, `cmd`, `cli_command`, `shellCommand`, `argv`, ...), CODE
    (`code`, `python_code`, `cell_source`, ...), both (`script`), or neither (0)."""
    return (COMMAND if norm_key(key) in COMMAND_KEYS or commandish(key) else 0) | (CODE if code_key(key) else 0)


@lru_cache(maxsize=4096)
def path_key(key: str) -> bool:
    """Whether a key names a file or directory (`path`, `source_file`, `cwd`, ...)."""
    return bool(PATH_KEY.search(key.replace("-", "").replace("_", "").lower()))


@lru_cache(maxsize=1024)
def wanted_keys(keys: tuple[str, ...]) -> frozenset[str]:
    return frozenset(norm_key(k) for k in keys)


@lru_cache(maxsize=8192)
def norm_key(key: str) -> str:
    """A key without `_`/`-`, in lower case: `cli_command`, `cliCommand` and `CLI-command` are one key."""
    return key.replace("_", "").replace("-", "").lower()


@dataclass
class CallView:
    """One call as the detectors see it; parses are computed once and shared by every family."""

    tool: str
    server: str
    arguments: Mapping[str, Any]
    context: ScanContext
    strings: list[StringValue] = field(default_factory=list)
    scalars: list[ScalarValue] = field(default_factory=list)
    prescreen: bool = True
    """Whether families may skip work their cheap pre-screens prove useless (off: every family runs in full;
    the differential tests compare both)."""

    @cached_property
    def lowered(self) -> list[str]:
        """Each string of `strings`, lower-cased (same order)."""
        return [s.value.lower() for s in self.strings]

    @cached_property
    def hits(self) -> list[frozenset[str]]:
        """The registered needles (`needles.NEEDLES`) each string holds, lower-cased (same order as `strings`)."""
        return NEEDLES.find_each(self.lowered, self.prescreen)

    @cached_property
    def tool_words(self) -> frozenset[str]:
        return name_words(self.tool)

    @cached_property
    def words(self) -> frozenset[str]:
        """Words of the tool name and the server name."""
        return tool_and_server_words(self.tool, self.server)

    def by_key(self, *keys: str) -> Iterator[StringValue]:
        """Strings whose normalised key (lower case, no `_`/`-`) is one of `keys`."""
        wanted = wanted_keys(keys)
        return (s for s in self.strings if norm_key(s.key) in wanted)

    def first(self, *keys: str) -> StringValue | None:
        return next(self.by_key(*keys), None)

    def scalar(self, *keys: str) -> ScalarValue | None:
        wanted = wanted_keys(keys)
        return next((s for s in self.scalars if norm_key(s.key) in wanted), None)

    def flag(self, *keys: str) -> bool:
        """Whether a boolean argument under one of `keys` is true."""
        s = self.scalar(*keys)
        return s is not None and s.value is True

    @cached_property
    def exec_tool(self) -> bool:
        return bool(self.tool_words & EXEC_TOOL_WORDS)

    @cached_property
    def commands(self) -> list[tuple[StringValue, Script]]:
        """Command lines, parsed: strings under command keys, and argv lists or program-plus-arguments
        objects at any depth (`commands.argv_lines`), joined as the OS would run them."""
        argv = argv_lines(self.arguments, self.exec_tool)  # NONE at once when `may_hold_argv` says no
        lines = argv.lines
        named = self.tool_words & CLI_NAMES
        if not named and self.exec_tool and self.words & CLI_NAMES:
            named = self.words & CLI_NAMES
        if named and isinstance(self.arguments, Mapping):
            lines = [*lines, *cli_lines(self.arguments, CLI_WORDS[min(named)])]
        out = [
            (StringValue(path, path.rsplit(".", 1)[-1], first), parse_shell(line, self.prescreen))
            for path, first, line in lines
        ]
        for s in self.strings:
            role = key_role(s.key)
            if role == 0 and s.path.count(".") > 1 and _UNDER_COMMANDS.search(s.path):
                role = COMMAND  # `{"scripts": {"postinstall": "..."}}`, `{"hooks": {"pre": "..."}}`
            if role == 0 and not (self.exec_tool and norm_key(s.key) in ("input", "args", "argv", "")):
                continue
            if not s.value.strip():
                continue
            if role != CODE and s.path not in argv.consumed:
                out.append((s, parse_shell(s.value, self.prescreen)))
            if role & CODE:
                line = code_line(s.key, s.value, self._language(s.path), self.tool_words)
                if line is not None and not (line == s.value and role & COMMAND):
                    out.append((s, parse_shell(line, self.prescreen)))
        return out

    def _language(self, path: str) -> str:
        """The value of a `language`/`lang`/`runtime` key next to `path` ("" when none)."""
        parent = path.rsplit(".", 1)[0]
        return next(
            (s.value for s in self.strings if s.path.rsplit(".", 1)[0] == parent and norm_key(s.key) in LANGUAGE_KEYS),
            "",
        )

    @cached_property
    def sql(self) -> list[tuple[StringValue, SqlScript]]:
        """Strings that parse as SQL with a real statement."""
        sql_words = self.words & SQL_TOOL_WORDS
        # `search_query`, `query_docs`: a search tool's query is not SQL it runs, unless a database is named too.
        sql_tool = bool(sql_words) and not (self.tool_words & _SEARCH_WORDS and sql_words <= {"query", "queries"})
        out: list[tuple[StringValue, SqlScript]] = []
        for s, hits in zip(self.strings, self.hits, strict=True):
            if self.prescreen and hits.isdisjoint(SQL_NEEDLES):
                continue  # no statement keyword anywhere: `parse_sql` would say None (see `SQL_NEEDLES`)
            key = norm_key(s.key)
            if not sql_tool and key in PROSE_KEYS:
                continue
            # `query` is also what search tools take: only a SQL tool's query is SQL it will surely run.
            runs = key in SQL_KEYS and (key not in _AMBIGUOUS_SQL_KEYS or not self.tool_words & _SEARCH_WORDS)
            strict = not (runs or (sql_tool and key not in PROSE_KEYS))
            parsed = parse_sql(s.value, strict=strict)
            if parsed is not None:
                out.append((s, parsed))
        return out

    @cached_property
    def urls(self) -> list[StringValue]:
        """Strings that are URLs as a whole."""
        out: list[StringValue] = []
        for s in self.strings:
            if len(s.value) > 8192 or (":" not in s.value and norm_key(s.key) not in URL_KEYS):
                continue
            v, _ = machine_url(s.value)  # what a client would request: tabs and newlines dropped, ...
            if _SCHEME.match(v) or (norm_key(s.key) in URL_KEYS and _HOSTLIKE.match(v)):
                out.append(StringValue(s.path, s.key, v))
        return out

    @cached_property
    def paths(self) -> list[StringValue]:
        """Strings that name a file or directory."""
        out: list[StringValue] = []
        for s in self.strings:
            if not s.value or len(s.value) > 4096 or ("\n" in s.value and "\n" in s.value.split("\x00", 1)[0].strip()):
                continue  # several lines: text, not a path (a trailing newline is stripped, as servers do)
            v = s.value if s.value.isprintable() and s.value[0] != " " and s.value[-1] != " " else machine_path(s.value)
            if not v or not (path_key(s.key) or (v[0] in "~/\\" and _ABS_WORD.match(v))) or _SCHEME.match(v):
                continue
            out.append(s)
        return out
