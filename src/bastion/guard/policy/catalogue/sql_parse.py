"""Parse SQL with sqlglot and name what each statement does.

Several dialects are tried in turn (the first that accepts the whole text wins); comments,
case and several statements in one string are the parser's business, not ours. A string is only
treated as SQL when its first word (after comments and parentheses) is a statement keyword and
a dialect parses it, so prose such as "ran DROP TABLE on staging" is not SQL.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from bastion.lazy_import import lazy_module

if TYPE_CHECKING:
    import sqlglot
    from sqlglot import exp
else:  # imported when SQL is first parsed: not on every path (`bastion wrap` answering initialize)
    sqlglot = lazy_module("sqlglot")
    exp = lazy_module("sqlglot.expressions")

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # unsupported syntax falls back to Command: not news

DIALECTS: tuple[str | None, ...] = (None, "postgres", "mysql", "sqlite", "tsql", "snowflake", "bigquery", "oracle")
MAX_PARSED = 262_144
STATEMENT_KEYWORDS = frozenset(
    {"select", "insert", "update", "delete", "drop", "truncate", "alter", "grant", "revoke", "create", "copy", "merge",
     "replace", "with", "attach", "detach", "pragma", "exec", "execute", "call", "load", "rename", "vacuum", "set",
     "upsert", "unload", "do", "values", "table"}
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
_DANGER_START = re.compile(r"(?:^|;)\s*(drop|truncate|delete|update|alter|grant|revoke)\b", re.I)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement: its operations (`drop`, `delete_without_where`, ...) and table; `text` is made on demand."""

    ops: frozenset[str]
    table: str
    raw: str
    tree: exp.Expr | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        """The statement as SQL (regenerated from the tree: generation costs more than parsing)."""
        return self.tree.sql()[:120] if self.tree is not None else self.raw[:120]


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
    """`text` parsed as SQL, or None. `strict` rejects statements sqlglot only kept as raw commands."""
    if not text or not looks_like_sql(text):
        return None
    return _parse(text, strict)


@lru_cache(maxsize=4096)
def _parse(text: str, strict: bool) -> SqlScript | None:
    if len(text) > MAX_PARSED:
        return _too_long(text)
    for dialect in DIALECTS:
        try:
            trees = sqlglot.parse(text, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        except Exception:  # sqlglot raises ParseError, TokenError and others on non-SQL
            continue
        lowered = text.lower()
        stmts = tuple(_statement(t, lowered) for t in trees if t is not None and not isinstance(t, exp.Semicolon))
        if not stmts:
            continue
        if strict and any(not s.ops or "command" in s.ops for s in stmts):
            continue
        return SqlScript(stmts, dialect or "generic")
    return None if strict else _too_long(text)


def _too_long(text: str) -> SqlScript | None:
    """What a keyword scan of statement starts finds, for SQL too long or too odd for the parser."""
    ops = {m.group(1).lower() for m in _DANGER_START.finditer(text)}
    if re.search(r"(?i)\binto\s+(out|dump)file\b|\bload_file\s*\(", text):
        ops.add("file_access")
    if not ops:
        return None
    return SqlScript((Statement(frozenset(ops), "", text[:80]),), "unparsed")


def _table(tree: exp.Expr) -> str:
    t = tree.find(exp.Table)
    return t.sql() if t is not None else ""


def _tautology(cond: exp.Expr | None) -> bool:
    if cond is None:
        return False
    if isinstance(cond, exp.Where):
        cond = cond.this
    parts = list(cond.flatten()) if isinstance(cond, exp.Or) else [cond]
    for part in parts:
        while isinstance(part, exp.Paren):
            part = part.this
        false = (isinstance(part, exp.Boolean) and not part.this) or (
            isinstance(part, exp.Literal) and part.this in ("0", "")
        )
        if part.find(exp.Column) is None and not false:
            return True
        if isinstance(part, exp.EQ) and part.left == part.right:
            return True
    return False


def _unbounded_select(sel: exp.Select) -> bool:
    if not sel.args.get("from") and not sel.args.get("from_"):
        return False
    where = sel.args.get("where")
    if (where is not None and not _tautology(where)) or sel.args.get("limit") or sel.args.get("fetch"):
        return False
    if sel.args.get("group"):
        return False
    projections = sel.expressions
    if projections and all(p.find(exp.AggFunc) is not None for p in projections):
        return False
    return any(not _catalog_table(t) for t in sel.find_all(exp.Table))


def _outer_selects(tree: exp.Expr) -> list[exp.Select]:
    """The SELECTs whose rows a statement returns (a CTE read only by an aggregate returns none of its rows)."""
    if isinstance(tree, exp.Select):
        return [tree]
    if isinstance(tree, exp.SetOperation):
        return _outer_selects(tree.left) + _outer_selects(tree.right)
    if isinstance(tree, exp.Subquery | exp.Paren):
        return _outer_selects(tree.this)
    inner = tree.find(exp.Select)
    return [inner] if inner is not None else []


def _catalog_table(table: exp.Table) -> bool:
    """The database's own catalogue (sqlite_master, information_schema, pg_catalog, ...): schema, not data."""
    name, schema = table.name.lower(), (table.db or "").lower()
    return (
        name in ("sqlite_master", "sqlite_schema", "sqlite_sequence", "sqlite_temp_master")
        or schema in ("information_schema", "pg_catalog", "sys", "mysql", "performance_schema")
        or name.startswith(("pg_", "information_schema"))
    )


def _statement(tree: exp.Expr, lowered: str) -> Statement:
    """What one parsed statement does; `lowered` is the whole input in lower case, for cheap substring checks."""
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
        if any(_unbounded_select(sel) for sel in _outer_selects(tree)):
            ops.add("unbounded_select")
        if tree.args.get("into") is not None or "outfile" in lowered or "dumpfile" in lowered:
            ops.add("file_access")
    for func in tree.find_all(exp.Anonymous, exp.Func) if any(f in lowered for f in _FILE_FUNCS) else ():
        name = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
        if name in _FILE_FUNCS:
            ops.add("file_access")
    return Statement(frozenset(ops), _table(tree), "", tree)


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
