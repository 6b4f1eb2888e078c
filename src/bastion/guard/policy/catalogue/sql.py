"""Databases: SQL statements parsed with sqlglot wherever they appear, and document-database bulk operations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bastion.guard.policy.catalogue import sql_docs
from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, StringValue, entry
from bastion.guard.policy.catalogue.shell_parse import Script
from bastion.guard.policy.catalogue.sql_parse import SqlScript, parse_sql
from bastion.guard.policy.catalogue.view import CallView
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("sql.drop", "Drop a table", "A DROP statement (table, view, index, ...): the object and its data are gone.",
          C, DENY),
    entry("sql.drop_database", "Drop a database or schema", "DROP DATABASE / DROP SCHEMA: every table in it is gone.",
          C, DENY),
    entry("sql.truncate", "Truncate a table", "TRUNCATE empties a table without a WHERE and usually without undo.",
          C, DENY),
    entry("sql.delete_without_where", "DELETE without WHERE", "A DELETE with no WHERE, or with an always-true one "
          "(`WHERE 1=1`, a WHERE commented out): every row goes.", C, DENY),
    entry("sql.update_without_where", "UPDATE without WHERE", "An UPDATE with no WHERE or an always-true one: every "
          "row is rewritten.", H, DENY),
    entry("sql.alter_destructive", "Destructive schema change", "ALTER TABLE that drops or renames a column or table.",
          H, DENY),
    entry("sql.alter", "Schema change", "ALTER TABLE adding or changing columns or constraints.", M, ASK),
    entry("sql.grant", "Grant or revoke privileges", "GRANT / REVOKE changes who may read or change data.", H, DENY),
    entry("sql.user_management", "Create or change database users", "CREATE/ALTER/DROP USER or ROLE, SET PASSWORD.",
          H, DENY),
    entry("sql.bulk_export", "Unbounded read of a whole table", "A read that returns (nearly) every row of a data "
          "table: no WHERE or one that selects everything (`1=1`, `id > 0`, `LIKE '%'`, a far-past date), no LIMIT or "
          "one above 1000 rows, a row-concatenating aggregate (`group_concat`, `string_agg`, `json_agg`), through CTEs "
          "and UNIONs; `COPY ... TO`; a document-database find with an empty filter and no limit.", M, ASK),
    entry("sql.file_access", "Read or write server files from SQL", "SELECT INTO OUTFILE, pg_read_file, LOAD_FILE, "
          "lo_export, ATTACH DATABASE: the database server's file system is reached.", H, DENY),
    entry("sql.exec_program", "Run a program from SQL", "COPY ... PROGRAM, xp_cmdshell: a shell command runs on the "
          "database host.", C, DENY),
    entry("sql.multi_statement", "Stacked statements", "Several statements in one string where a read is followed by "
          "a write (the shape of SQL injection).", H, DENY),
    entry("sql.write_in_read_only", "Write through a read-only tool", "A statement that changes data sent to a tool "
          "whose name or declared annotations say it only reads.", H, DENY),
    entry("sql.disable_safety", "Disable database safety checks", "SET FOREIGN_KEY_CHECKS=0, "
          "session_replication_role = replica, SQL_SAFE_UPDATES=0.", M, ASK),
    entry("sql.dynamic_sql", "Dynamic SQL that cannot be read", "EXEC / EXECUTE IMMEDIATE / sp_executesql / PREPARE "
          "whose SQL text is computed (`CHAR(68)+...`, a column, a function) or nested too deep to follow: what "
          "runs cannot be judged.", M, ASK),
    entry("sql.unparsed_write", "Unparseable SQL with a destructive verb", "SQL for a tool that runs it, which no "
          "dialect parses, with DROP, DELETE, UPDATE, ALTER, TRUNCATE, GRANT, ... among its tokens.", M, ASK),
    entry("sql.collection_drop", "Drop a document collection", "A document-database tool dropping a collection or "
          "database (MongoDB drop, dropDatabase).", C, DENY),
    entry("sql.document_delete_all", "Delete every document", "deleteMany / remove with an empty filter.", C, DENY),
    entry("sql.document_update_all", "Update every document", "updateMany with an empty filter.", H, DENY),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}
_OP_ENTRY = {
    "drop": "sql.drop", "drop_database": "sql.drop_database", "truncate": "sql.truncate",
    "delete_without_where": "sql.delete_without_where", "update_without_where": "sql.update_without_where",
    "alter_drop": "sql.alter_destructive", "alter": "sql.alter", "grant": "sql.grant", "revoke": "sql.grant",
    "user_management": "sql.user_management", "unbounded_select": "sql.bulk_export", "copy_to": "sql.bulk_export",
    "file_access": "sql.file_access", "exec_program": "sql.exec_program", "disable_safety": "sql.disable_safety",
    "dynamic_sql": "sql.dynamic_sql", "unparsed_write": "sql.unparsed_write",
}  # fmt: skip
WRITE_OPS = frozenset({"drop", "drop_database", "truncate", "delete", "delete_without_where", "update",
                       "update_without_where", "alter", "alter_drop", "grant", "revoke", "user_management", "insert",
                       "merge", "create", "copy_from", "exec_program", "unparsed_write", "dynamic_sql"})  # fmt: skip
_READ_TOOL_WORDS = frozenset({"read", "select", "readonly", "describe", "list", "explain", "search"})
SQL_CLIENTS = frozenset({"psql", "mysql", "mariadb", "sqlite3", "duckdb", "clickhouse-client", "sqlcmd", "cockroach",
                         "snowsql", "bq", "mongosh", "mongo", "pgcli", "mycli", "litecli"})  # fmt: skip


def sql_operations(text: str) -> frozenset[str] | None:
    """The operations of the SQL in `text` (`select`, `drop`, `delete_without_where`, `unbounded_select`,
    `multi_statement`, ...), or None when `text` is not SQL. Never raises."""
    try:
        parsed = parse_sql(text, strict=False) if isinstance(text, str) else None
    except Exception:
        return None
    return parsed.operations if parsed is not None else None


def _findings(call: CallView, where: StringValue, parsed: SqlScript, prefix: str = "") -> Iterator[Finding]:
    ops = parsed.operations
    for stmt in parsed.statements:
        for op in sorted(stmt.ops):
            eid = _OP_ENTRY.get(op)
            if eid:
                scope = f" ({_scope_reason(stmt.tree)})" if op == "unbounded_select" and stmt.tree is not None else ""
                text = f"{prefix}{_label(op)}{scope}: {stmt.text[:80]} in {where.path}"
                yield Finding(_BY_ID[eid], text, where.path)
    reads = [s for s in parsed.statements if s.ops & {"select"}]
    writes = [s for s in parsed.statements if s.ops & WRITE_OPS]
    if len(parsed.statements) > 1 and reads and writes:
        yield Finding(_BY_ID["sql.multi_statement"], f"{len(parsed.statements)} statements, a read then a write, "
                      f"in {where.path}", where.path)  # fmt: skip
    read_only = call.context.read_only_hint is True or bool(call.tool_words & _READ_TOOL_WORDS)
    if read_only and ops & WRITE_OPS and call.context.read_only_hint is not False:
        yield Finding(_BY_ID["sql.write_in_read_only"], f"{', '.join(sorted(ops & WRITE_OPS))} sent to read-only "
                      f"tool {call.tool} in {where.path}", where.path)  # fmt: skip


def _label(op: str) -> str:
    return op.replace("_", " ").upper() if op in ("drop", "truncate", "grant", "revoke") else op.replace("_", " ")


def detect(call: CallView) -> Iterator[Finding]:
    for where, parsed in call.sql:
        yield from _findings(call, where, parsed)
    for where, script in call.commands:
        for client, text in _client_sql(script):
            inner = parse_sql(text, strict=False)
            if inner is not None:
                yield from _findings(call, where, inner, f"{client} runs ")
    yield from _documents(call)


def _client_sql(script: Script) -> Iterator[tuple[str, str]]:
    """(client, text) for SQL a shell line hands to a database client: its arguments, a here-string
    (`psql <<< "..."`), or what `echo`/`printf` pipe into it."""
    for cmd in script.commands:
        if cmd.name in SQL_CLIENTS:
            yield from ((cmd.name, arg) for arg in cmd.args)
            yield from ((cmd.name, target) for op, target in cmd.redirects if op == "<<<")
    for pipe in script.pipelines:
        clients = [c.name for c in pipe[1:] if c.name in SQL_CLIENTS]
        if clients:
            for cmd in pipe:
                if cmd.name in ("echo", "printf"):
                    yield clients[0], " ".join(a for a in cmd.args if not a.startswith("-"))


def _documents(call: CallView) -> Iterator[Finding]:
    for op, reason in sql_docs.structured(call):
        yield Finding(_BY_ID[_DOC_ENTRY[op]], reason, "arguments")
    for op, reason, path in sql_docs.shell_code(call):
        yield Finding(_BY_ID[_DOC_ENTRY[op]], f"{reason} in {path}", path)


_DOC_ENTRY = {"collection_drop": "sql.collection_drop", "document_delete_all": "sql.document_delete_all",
              "document_update_all": "sql.document_update_all", "unbounded_select": "sql.bulk_export"}  # fmt: skip


def _scope_reason(tree: Any) -> str:
    """Why a read is a whole table (sqlglot is loaded only once SQL has been parsed)."""
    from bastion.guard.policy.catalogue.sql_scope import scope_reason

    return scope_reason(tree)
