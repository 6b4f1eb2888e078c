"""The scope of a read: whether a query returns (nearly) every row of a table.

A read is bulk when rows leave a data table (not the database's own catalogue) and nothing
bounds them: no WHERE, or one that selects everything (`1=1`, `id > 0` on a key, `LIKE '%'`,
a date before 1980, `x = x`), and no LIMIT / TOP / FETCH at or below `BULK_ROWS`. A
row-concatenating aggregate (`group_concat`, `string_agg`, `json_agg`, `array_agg`, ...) is
bulk even under a LIMIT or GROUP BY: every row comes back inside one value. Plain aggregates
(`count(*)`, `avg`) and bounded reads are not. CTEs and subqueries are followed to their tables.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from sqlglot import exp

from bastion.guard.policy.catalogue.bulk_rows import BULK_ROWS

ROW_CONCAT_NAMES = frozenset({"group_concat", "string_agg", "json_agg", "jsonb_agg", "array_agg", "listagg",
                              "json_group_array", "json_group_object", "json_arrayagg", "json_objectagg",
                              "jsonb_object_agg", "json_object_agg", "xmlagg", "collect_list", "collect_set",
                              "grouparray", "array_concat_agg", "arrayagg", "wm_concat"})  # fmt: skip
_ROW_CONCAT_TYPES = (exp.GroupConcat, exp.ArrayAgg, exp.JSONArrayAgg, exp.JSONObjectAgg, exp.ArrayConcatAgg,
                     exp.JSONBObjectAgg, exp.ObjectAgg, exp.ArrayUniqueAgg)  # fmt: skip
_KEY = re.compile(r"^(?:id|_id|pk|rowid|_rowid_|oid|uid|uuid|key|serial|.*_(?:id|pk|key|no|num))$|^[a-z0-9_]*[a-z]Id$")
_TIME = re.compile(r"(?:^|_)(?:at|on|date|time|timestamp|ts|dt|day|created|updated|modified)$|date|time", re.I)
_SOFT_DELETE = re.compile(r"(?i)^(?:is_?)?(?:deleted|archived|removed|purged)(?:_?(?:at|on|date|time))?$")
_YEAR = re.compile(r"^\s*(\d{4})\b")
_HUGE = 1_000_000
_THIS_YEAR = time.gmtime().tm_year
CATALOG_SCHEMAS = frozenset({"information_schema", "pg_catalog", "sys", "mysql", "performance_schema"})


def catalog_table(table: exp.Table) -> bool:
    """The database's own catalogue (sqlite_master, information_schema, pg_catalog, ...): schema, not data."""
    name, schema = table.name.lower(), (table.db or "").lower()
    return (
        name in ("sqlite_master", "sqlite_schema", "sqlite_sequence", "sqlite_temp_master")
        or schema in CATALOG_SCHEMAS
        or name.startswith(("pg_", "information_schema"))
    )


def _ctes(node: exp.Expr) -> dict[str, exp.Expr]:
    """The CTEs visible at `node`: its own and its ancestors' `WITH`."""
    found: dict[str, exp.Expr] = {}
    cur: exp.Expr | None = node
    while cur is not None:
        with_ = cur.args.get("with") or cur.args.get("with_")
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                found.setdefault(cte.alias_or_name.lower(), cte.this)
        cur = cur.parent
    return found


def _sources(sel: exp.Select) -> list[exp.Expr]:
    from_ = sel.args.get("from") or sel.args.get("from_")
    out = [from_.this] if isinstance(from_, exp.From) else []
    out += [j.this for j in sel.args.get("joins") or ()]
    return out


def _source_unbounded(src: exp.Expr, ctes: Mapping[str, exp.Expr], depth: int) -> bool:
    if depth > 16:
        return True
    if isinstance(src, exp.Table):
        cte = ctes.get(src.name.lower()) if not src.db else None
        if cte is not None:
            return rows_unbounded(cte, depth + 1)
        return not catalog_table(src) and bool(src.name)
    if isinstance(src, exp.Subquery | exp.Paren):
        return rows_unbounded(src.this, depth + 1)
    return False


def rows_unbounded(query: exp.Expr, depth: int = 0) -> bool:
    """Whether `query` returns the rows of a whole data table."""
    if isinstance(query, exp.SetOperation):
        return rows_unbounded(query.left, depth + 1) or rows_unbounded(query.right, depth + 1)
    if isinstance(query, exp.Subquery | exp.Paren):
        return rows_unbounded(query.this, depth + 1)
    if not isinstance(query, exp.Select):
        inner = query.find(exp.Select)
        return inner is not None and rows_unbounded(inner, depth + 1)
    if _selective(query) or _limited(query) or query.args.get("group"):
        return False
    projections = query.expressions
    if projections and all(p.find(exp.AggFunc) is not None for p in projections):
        return False
    return _reads_table(query, depth)


def _reads_table(sel: exp.Select, depth: int) -> bool:
    ctes = _ctes(sel)
    return any(_source_unbounded(src, ctes, depth) for src in _sources(sel))


def row_concat_unbounded(tree: exp.Expr) -> bool:
    """Whether a row-concatenating aggregate in `tree` folds a whole table into one value."""
    for func in tree.find_all(*_ROW_CONCAT_TYPES, exp.Anonymous):
        if isinstance(func, exp.Anonymous) and func.name.lower() not in ROW_CONCAT_NAMES:
            continue
        sel = func.find_ancestor(exp.Select)
        if sel is not None and not _selective(sel) and _reads_table(sel, 0):
            return True
    return False


def _selective(sel: exp.Select) -> bool:
    where = sel.args.get("where")
    return where is not None and not selects_everything(where.this if isinstance(where, exp.Where) else where)


def _number(node: exp.Expr | None) -> float | None:
    if isinstance(node, exp.Neg):
        inner = _number(node.this)
        return -inner if inner is not None else None
    if isinstance(node, exp.Literal):  # `id > '0'` compares as a number too
        try:
            return float(node.this)
        except ValueError:
            return None
    return None


def _limited(sel: exp.Select) -> bool:
    limit = sel.args.get("limit")
    if limit is None:
        return False
    options = limit.args.get("limit_options")
    if isinstance(options, exp.LimitOptions) and options.args.get("percent"):
        return False
    count = limit.args.get("count") if isinstance(limit, exp.Fetch) else limit.expression
    n = _number(count)
    return n is not None and 0 <= n <= BULK_ROWS


def _year(node: exp.Expr) -> int | None:
    interval = node.find(exp.Interval)
    if isinstance(node, exp.Sub) and interval is not None:  # now() - INTERVAL '100 years'
        unit = str(interval.args.get("unit") or "").lower()
        amount = _number(interval.this)
        if amount is None and isinstance(interval.this, exp.Literal):
            m = re.match(r"^\s*(\d+)\s*(year|yr|y|month|mon|day|d)", interval.this.this.lower())
            amount, unit = (float(m.group(1)), m.group(2)) if m else (None, unit)
        per_year = 1 if unit.startswith("y") else 12 if unit.startswith("mon") else 365 if unit.startswith("d") else 0
        return _THIS_YEAR - int(amount / per_year) if amount is not None and per_year else None
    lit = node if isinstance(node, exp.Literal) else node.find(exp.Literal)
    if lit is None:
        return None
    if lit.is_string:
        m = _YEAR.match(lit.this)
        return int(m.group(1)) if m else None
    n = _number(lit)
    return 1970 if n is not None and n <= 0 else None


_FLIP: dict[type[exp.Expr], type[exp.Expr]] = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}


def _compare_everything(part: exp.Binary) -> bool:
    kind: type[exp.Expr] = type(part)
    col, val = part.this, part.expression
    if not isinstance(col, exp.Column) and isinstance(val, exp.Column):
        col, val, kind = val, col, _FLIP.get(kind, kind)
    if not isinstance(col, exp.Column) or val.find(exp.Column) is not None:
        return False
    name = col.name
    if _KEY.match(name) or _KEY.match(name.lower()):
        n = _number(val)
        if kind is exp.NEQ:
            return True
        if n is not None:
            low = (kind is exp.GT and n <= 0) or (kind is exp.GTE and n <= 1)
            return low or (kind in (exp.LT, exp.LTE) and n >= _HUGE)
    if _TIME.search(name):
        year = _year(val)
        if year is not None:
            return (kind in (exp.GT, exp.GTE) and year <= 1980) or (kind in (exp.LT, exp.LTE) and year >= 2100)
    return False


def _wildcard_only(pattern: exp.Expr, chars: str) -> bool:
    return isinstance(pattern, exp.Literal) and pattern.is_string and all(c in chars for c in pattern.this)


def selects_everything(cond: exp.Expr) -> bool:
    """Whether a WHERE condition holds for (nearly) every row."""
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if isinstance(cond, exp.Or):
        return any(selects_everything(p) for p in cond.flatten())
    if isinstance(cond, exp.And):
        return all(selects_everything(p) for p in cond.flatten())
    false = (isinstance(cond, exp.Boolean) and not cond.this) or (
        isinstance(cond, exp.Literal) and cond.this in ("0", "")
    )
    if cond.find(exp.Column) is None:
        return not false
    if isinstance(cond, exp.EQ | exp.GTE | exp.LTE | exp.NullSafeEQ) and cond.left == cond.right:
        return True
    if isinstance(cond, exp.Like | exp.ILike):
        return _wildcard_only(cond.expression, "%")
    if isinstance(cond, exp.Glob):
        return _wildcard_only(cond.expression, "*")
    if isinstance(cond, exp.RegexpLike):
        return isinstance(cond.expression, exp.Literal) and cond.expression.this in ("", ".*", "^.*$", "^.*", ".*$")
    if isinstance(cond, exp.Not) and isinstance(cond.this, exp.Is) and isinstance(cond.this.this, exp.Column):
        return bool(_KEY.match(cond.this.this.name)) and isinstance(cond.this.expression, exp.Null)
    if isinstance(cond, exp.Is) and isinstance(cond.this, exp.Column) and isinstance(cond.expression, exp.Null):
        return bool(_SOFT_DELETE.match(cond.this.name))  # `deleted_at IS NULL`: every live row
    if isinstance(cond, exp.Between) and isinstance(cond.this, exp.Column) and _KEY.match(cond.this.name):
        low, high = _number(cond.args.get("low")), _number(cond.args.get("high"))
        return low is not None and high is not None and low <= 1 and high >= _HUGE
    if isinstance(cond, exp.NEQ) and any(isinstance(v, exp.Literal) and v.this == "" for v in (cond.left, cond.right)):
        return True  # `email <> ''`
    if isinstance(cond, exp.Not) and isinstance(cond.this, exp.In) and isinstance(cond.this.this, exp.Column):
        return bool(_KEY.match(cond.this.this.name)) and not cond.this.args.get("query")  # `id NOT IN (-1)`
    if isinstance(cond, exp.GT | exp.GTE | exp.LT | exp.LTE | exp.NEQ):
        return _compare_everything(cond)
    return False


def scope_reason(tree: exp.Expr) -> str:
    """Why a read returns a whole table, in words for the audit log ("the unusual query scope")."""
    for func in tree.find_all(*_ROW_CONCAT_TYPES, exp.Anonymous):
        name = func.name.lower() if isinstance(func, exp.Anonymous) else func.sql_name().lower()
        if isinstance(func, _ROW_CONCAT_TYPES) or name in ROW_CONCAT_NAMES:
            sel = func.find_ancestor(exp.Select)
            if sel is not None and not _selective(sel) and _reads_table(sel, 0):
                return f"{name} folds every row into one value"
    for sel in tree.find_all(exp.Select):
        if not rows_unbounded(sel):
            continue
        where = sel.args.get("where")
        limit = sel.args.get("limit")
        if where is not None:
            return f"WHERE {where.this.sql()[:60]} selects every row"
        if limit is not None:
            return f"{limit.sql()[:40]} does not bound it to {BULK_ROWS} rows"
        return "no WHERE or LIMIT"
    return "every row"
