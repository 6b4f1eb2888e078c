"""Parse SQL with sqlglot and name what each statement does.

Several dialects are tried in turn (the first that accepts the whole text wins); comments,
case and several statements in one string are the parser's business, not ours. A string is only
treated as SQL when its first word (after comments and parentheses) is a statement keyword and
a dialect parses it, so prose such as "ran DROP TABLE on staging" is not SQL.

Every statement counts, whatever comes first (`BEGIN; DROP TABLE t; COMMIT;`). A script with a
statement sqlglot only keeps as a raw command, or that no dialect parses whole, is taken apart by
`sql_lex`: statement by statement, statements inside procedural blocks, the SQL dynamic SQL runs
(judged recursively, `MAX_DEPTH` levels), and a token-level verdict for what still does not parse.
What a read returns is `sql_scope`'s business.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from bastion.lazy_import import lazy_module

if TYPE_CHECKING:
    import sqlglot
    from sqlglot import exp
    from sqlglot.parser import Parser
    from sqlglot.tokens import Tokenizer

    from bastion.guard.policy.catalogue import sql_lex, sql_scope
    from bastion.guard.policy.catalogue.sql_lex import Piece
else:  # imported when SQL is first parsed: not on every path (`bastion wrap` answering initialize)
    sqlglot = lazy_module("sqlglot")
    exp = lazy_module("sqlglot.expressions")
    sql_lex = lazy_module("bastion.guard.policy.catalogue.sql_lex")
    sql_scope = lazy_module("bastion.guard.policy.catalogue.sql_scope")


logging.getLogger("sqlglot").setLevel(logging.ERROR)  # unsupported syntax falls back to Command: not news

DIALECTS: tuple[str | None, ...] = (None, "postgres", "mysql", "sqlite", "tsql", "snowflake", "bigquery", "oracle")
MAX_PARSED = 262_144
MAX_DEPTH = 4
MAX_PIECES, MAX_EMBEDDED, MAX_PAYLOADS = 64, 8, 32
"""Parse budget of one string (statements parsed alone, statements inside a block, dynamic SQL sites): past
it statements are judged from their tokens and further dynamic SQL is `dynamic_sql`, so no input costs
more than a bounded number of parses."""
"""How many levels of dynamic SQL (SQL that builds and runs SQL) are followed; deeper is `dynamic_sql`."""
_DYNAMIC_HINT = re.compile(
    r"(?i)\b(?:exec|execute|prepare|do|sp_executesql|immediate|begin|then|function|procedure|proc|trigger)\b"
)
STATEMENT_KEYWORDS = frozenset(
    {"select", "insert", "update", "delete", "drop", "truncate", "alter", "grant", "revoke", "create", "copy", "merge",
     "replace", "with", "attach", "detach", "pragma", "exec", "execute", "call", "load", "rename", "vacuum", "set",
     "upsert", "unload", "do", "values", "table", "use", "begin", "commit", "rollback", "savepoint", "release",
     "start", "end", "show", "analyze", "analyse", "lock", "unlock", "explain", "describe", "discard", "declare",
     "prepare", "deallocate", "reset", "listen", "notify", "comment", "refresh", "reindex", "cluster", "checkpoint",
     "optimize", "flush", "abort", "export", "import", "backup", "restore", "if", "while", "sp_executesql"}
)  # fmt: skip
_LEAD = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|#[^\n]*(?:\n|$)|\()*", re.S)
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_FILE_FUNCS = frozenset({"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "lo_import", "lo_export", "load_file",
                         "readfile", "writefile", "dblink", "dblink_exec", "xp_cmdshell", "sys_exec", "sys_eval",
                         "load_extension", "openrowset", "opendatasource"})  # fmt: skip
_USER_WORDS = re.compile(r"^\s*(create|alter|drop)\s+(user|role|login)\b", re.I)
_DROP_OBJECT = re.compile(
    r"(?i)\s*(table|database|schema|view|index|function|procedure|sequence|trigger|"
    r"materialized|collection|keyspace|type|extension)\b"
)
_NESTED_WRITE = re.compile(r"\b(?:delete|update|drop|truncate|insert|merge)\b")
_PROC_CALL = re.compile(r"^\s*[\[\w.\]]+(?:\s|$)")
_FILE_WORDS = re.compile(r"(?i)\binto\s+(out|dump)file\b|\bload_file\s*\(")
_DANGER_START = re.compile(r"(?:^|;)\s*(drop|truncate|delete|update|alter|grant|revoke)\b", re.I)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement: its operations (`drop`, `delete_without_where`, ...) and table; `text` is made on demand."""

    ops: frozenset[str]
    given_table: str | None
    """The table, or None: the first table of `tree`, made on demand (`table`)."""
    raw: str
    tree: exp.Expr | None = field(default=None, compare=False, repr=False)
    _text: list[str] = field(default_factory=list, compare=False, repr=False)
    """`text`, once made (statements are cached with their parse, so a repeated call pays for it once)."""
    _table: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def table(self) -> str:
        """The first table the statement names, as SQL ("" when none). Made on demand, as `text` is: generating
        SQL copies the tree and costs more than parsing it, and only a finding's reason would show it."""
        if self.given_table is not None:
            return self.given_table
        if not self._table:
            self._table.append(_table(self.tree) if self.tree is not None else "")
        return self._table[0]

    @property
    def text(self) -> str:
        """The statement as SQL (regenerated from the tree: generation costs more than parsing)."""
        if not self._text:
            self._text.append(self.tree.sql()[:120] if self.tree is not None else self.raw[:120])
        return self._text[0]


@dataclass(frozen=True, slots=True)
class SqlScript:
    """A string that parsed as SQL: its statements and the union of their operations."""

    statements: tuple[Statement, ...]
    dialect: str

    @property
    def operations(self) -> frozenset[str]:
        ops: set[str] = set()
        for s in self.statements:
            ops |= s.ops
        if len(self.statements) > 1:
            ops.add("multi_statement")
        return frozenset(ops)


def looks_like_sql(text: str) -> bool:
    """Cheap gate: the first word after comments and parentheses is a statement keyword."""
    head = _LEAD.match(text)
    rest = text[head.end() if head else 0 :]
    word = _FIRST_WORD.match(rest)
    return bool(word) and word is not None and word.group(0).lower() in STATEMENT_KEYWORDS


def parse_sql(text: str, strict: bool = True) -> SqlScript | None:
    """`text` parsed as SQL, or None. `strict` rejects statements sqlglot only kept as raw commands.

    MySQL executable comments are code; every statement is judged, and the text dynamic SQL runs
    is judged as SQL in turn (`MAX_DEPTH` levels deep)."""
    if not text:
        return None
    code = sql_lex.split_batches(sql_lex.unwrap_executable_comments(text))
    if not looks_like_sql(code):
        return None
    return _parse(code, strict, 0)


@lru_cache(maxsize=4096)
def _parse(text: str, strict: bool, depth: int) -> SqlScript | None:
    if len(text) > MAX_PARSED:
        return _too_long(text)
    whole = _parse_whole(text, strict)
    if whole is not None and not _DYNAMIC_HINT.search(text) and not any("command" in s.ops for s in whole.statements):
        return whole
    if strict and whole is None:
        return _strict_payloads(text, depth) if _DYNAMIC_HINT.search(text) else None
    return _parse_pieces(text, whole, depth)


def _strict_payloads(text: str, depth: int) -> SqlScript | None:
    """Outside SQL contexts: the SQL dynamic SQL runs (`DO $$ ... EXECUTE '...' $$`), when it parses strictly."""
    toks = sql_lex.tokens(text)
    if toks is None or depth >= MAX_DEPTH:
        return None
    stmts = [
        Statement(s.ops, s.given_table, f"dynamic SQL: {s.text}", s.tree)
        for payload in sql_lex.dynamic_payloads(sql_lex.split(text, toks))
        for s in (parse_sql(payload.text, True) or SqlScript((), "")).statements
    ]
    return SqlScript(tuple(stmts), "dynamic") if stmts else None


def _parse_whole(text: str, strict: bool) -> SqlScript | None:
    """The first dialect that parses all of `text`."""
    hints = _Hints.of(text)
    for dialect in DIALECTS:
        try:
            trees = read_sql(text, dialect)
        except Exception:  # sqlglot raises ParseError, TokenError and others on non-SQL
            continue
        stmts = tuple(_statement(t, hints) for t in trees if t is not None and not isinstance(t, exp.Semicolon))
        if not stmts:
            continue
        if strict and any(not s.ops or "command" in s.ops for s in stmts):
            continue
        return SqlScript(stmts, dialect or "generic")
    return None


_READERS = threading.local()


def read_sql(text: str, dialect: str | None) -> list[exp.Expr | None]:
    """`sqlglot.parse(text, read=dialect, error_level=RAISE)`, with this thread's tokenizer and parser for the
    dialect kept (both reset themselves on each use): making them anew cost a fifth of a short statement's parse."""
    readers: dict[str | None, tuple[Tokenizer, Parser]] | None = getattr(_READERS, "by_dialect", None)
    if readers is None:
        readers = _READERS.by_dialect = {}
    pair = readers.get(dialect)
    if pair is None:
        reader = sqlglot.Dialect.get_or_raise(dialect)
        pair = readers[dialect] = (reader.tokenizer(), reader.parser(error_level=sqlglot.ErrorLevel.RAISE))
    tokenizer, parser = pair
    return parser.parse(tokenizer.tokenize(text), text)


def _parse_pieces(text: str, whole: SqlScript | None, depth: int) -> SqlScript | None:
    """Statement by statement: those no dialect parses judged from their tokens, dynamic SQL payloads added."""
    toks = sql_lex.tokens(text)
    if toks is None:
        return whole or _too_long(text)
    pieces = sql_lex.split(text, toks)
    commands = whole is None or any("command" in s.ops for s in whole.statements)
    stmts: list[Statement] = [] if commands or whole is None else list(whole.statements)
    if commands:
        for index, piece in enumerate(pieces):
            if index < MAX_PIECES:
                stmts += _piece_statements(piece, depth)
            elif ops := sql_lex.token_ops(piece):  # past the parse budget: tokens only, towards ask
                stmts.append(Statement(frozenset(ops | {"unparsed_write"} if ops else ops), "", piece.text[:80]))
    payloads = sql_lex.dynamic_payloads(pieces)
    if len(payloads) > MAX_PAYLOADS:
        stmts.append(Statement(frozenset({"dynamic_sql"}), "", f"{len(payloads)} dynamic SQL sites"))
    for payload in payloads[:MAX_PAYLOADS]:
        code, inner = sql_lex.unwrap_executable_comments(payload.text), None
        if depth < MAX_DEPTH and looks_like_sql(code):
            inner = _parse(code, False, depth + 1)
        elif depth < MAX_DEPTH and _PROC_CALL.match(code):  # EXEC of a procedure by name, such as xp_cmdshell
            inner = _parse("EXEC " + code, False, depth + 1)
        if inner is not None:
            stmts += [Statement(s.ops, s.given_table, f"dynamic SQL: {s.text}", s.tree) for s in inner.statements]
        if payload.opaque or inner is None or depth >= MAX_DEPTH:
            stmts.append(Statement(frozenset({"dynamic_sql"}), "", f"dynamic SQL: {payload.text[:80] or '?'}"))
    if not stmts:
        return None
    return SqlScript(tuple(stmts), whole.dialect if whole is not None else "statements")


def _piece_statements(piece: Piece, depth: int) -> list[Statement]:
    if not looks_like_sql(piece.text):
        ops = sql_lex.token_ops(piece)
        return [Statement(frozenset(ops), "", piece.text[:80])] if ops else []
    parsed = _parse_whole(piece.text, False)
    if parsed is not None and not any("command" in s.ops for s in parsed.statements):
        return list(parsed.statements)
    out = list(parsed.statements) if parsed is not None else []
    embedded = [s for text in sql_lex.embedded_starts(piece)[:MAX_EMBEDDED] if depth < MAX_DEPTH
                for s in (_parse(text, False, depth + 1) or SqlScript((), "")).statements]  # fmt: skip
    ops = sql_lex.token_ops(piece)
    if _FILE_WORDS.search(piece.text):
        ops.add("file_access")
    if ops and not any(s.ops - {"command", "unparsed_write"} for s in embedded):
        out.append(Statement(frozenset(ops), "", piece.text[:80]))
    return out + embedded


def _too_long(text: str) -> SqlScript | None:
    """What a keyword scan of statement starts finds, for SQL too long or too odd for the parser."""
    ops = {m.group(1).lower() for m in _DANGER_START.finditer(text)}
    if _FILE_WORDS.search(text):
        ops.add("file_access")
    if not ops:
        return None
    return SqlScript((Statement(frozenset(ops | {"unparsed_write"}), "", text[:80]),), "unparsed")


def _table(tree: exp.Expr) -> str:
    t = tree.find(exp.Table)
    return t.sql() if t is not None else ""


def _tautology(where: exp.Expr | None) -> bool:
    if where is None:
        return False
    return sql_scope.selects_everything(where.this if isinstance(where, exp.Where) else where)


@dataclass(frozen=True, slots=True)
class _Hints:
    """Substring facts about a whole script, found once (per statement, a script of many would cost its square)."""

    outfile: bool
    nested_write: bool
    file_funcs: bool

    @classmethod
    def of(cls, text: str) -> _Hints:
        lowered = text.lower()
        return cls(
            "outfile" in lowered or "dumpfile" in lowered,
            _NESTED_WRITE.search(lowered) is not None,
            any(f in lowered for f in _FILE_FUNCS),
        )


def _statement(tree: exp.Expr, hints: _Hints) -> Statement:
    """What one parsed statement does; `hints` say which costlier checks the script's text calls for."""
    ops: set[str] = set()
    if isinstance(tree, exp.Drop):
        kind = str(tree.args.get("kind") or "").upper()
        ops.add("drop")
        if kind in ("DATABASE", "SCHEMA"):
            ops.add("drop_database")
        if kind in ("USER", "ROLE"):
            ops.add("user_management")
    elif isinstance(tree, exp.TruncateTable):
        ops.add("truncate")
    elif isinstance(tree, exp.Delete):
        where = tree.args.get("where")
        ops.add("delete_without_where" if where is None or _tautology(where) else "delete")
    elif isinstance(tree, exp.Update):
        if not tree.expressions:
            return Statement(frozenset(), "", "", tree)
        where = tree.args.get("where")
        ops.add("update_without_where" if where is None or _tautology(where) else "update")
    elif isinstance(tree, exp.Alter):
        actions = tree.args.get("actions") or []
        destructive = any(isinstance(a, exp.Drop | exp.RenameColumn | exp.AlterRename) for a in actions)
        ops.add("alter_drop" if destructive else "alter")
    elif isinstance(tree, exp.Grant):
        ops.add("grant")
    elif isinstance(tree, exp.Revoke):
        ops.add("revoke")
    elif isinstance(tree, exp.Copy):
        raw = tree.sql().upper()
        ops.add("copy_to" if tree.args.get("kind") is False or " TO " in f" {raw} " else "copy_from")
        if "PROGRAM" in raw:
            ops.add("exec_program")
    elif isinstance(tree, exp.Command):
        ops |= _command_ops(tree)
    elif isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "").upper()
        ops.add("user_management" if kind in ("USER", "ROLE") else "create")
    elif isinstance(tree, exp.Insert):
        ops.add("insert")
    elif isinstance(tree, exp.Merge):
        ops.add("merge")
    elif isinstance(tree, exp.Set):
        ops.add("set")
        if re.search(r"foreign_key_checks|session_replication_role|sql_safe_updates", tree.sql(), re.I):
            ops.add("disable_safety")
    elif isinstance(tree, exp.Query):
        ops.add("select")
    else:
        ops.add(type(tree).__name__.lower())
    if isinstance(tree, exp.Query | exp.Copy):
        if sql_scope.rows_unbounded(tree) or sql_scope.row_concat_unbounded(tree):
            ops.add("unbounded_select")
        if tree.args.get("into") is not None or hints.outfile:
            ops.add("file_access")
    if hints.nested_write and not isinstance(tree, exp.Alter):
        for node in tree.find_all(exp.Delete, exp.Update, exp.Drop, exp.TruncateTable, exp.Insert, exp.Merge):
            if node is not tree:  # a writable CTE, a routine's body: `WITH x AS (DELETE FROM t RETURNING *) ...`
                ops |= _statement(node, hints).ops
    for func in tree.find_all(exp.Anonymous, exp.Func) if hints.file_funcs else ():
        name = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
        if name in _FILE_FUNCS:
            ops.add("file_access")
    return Statement(frozenset(ops), None, "", tree)


def _command_ops(tree: exp.Command) -> set[str]:
    name = str(tree.this).lower()
    rest = tree.expression.sql() if isinstance(tree.expression, exp.Expr) else str(tree.expression or "")
    full = f"{name} {rest}"
    if name in ("grant", "revoke"):
        return {name}
    if _USER_WORDS.match(full) or re.match(r"^\s*set\s+password\b", full, re.I):
        return {"user_management"}
    if name in ("exec", "execute", "call") and re.search(r"xp_cmdshell|sp_oacreate|sp_configure", rest, re.I):
        return {"exec_program"}
    if name == "attach":
        return {"file_access"}
    if name == "drop" and re.match(_DROP_OBJECT, rest):
        return {"drop", "command"}
    return {"command"}
