"""Document databases: what a find, aggregate, delete or drop reaches, from structured arguments or shell code.

A filter selects everything when it is absent or empty, or every condition in it holds for any
document (`{"_id": {"$exists": true}}`, `{"$where": "true"}`, `{"name": {"$regex": ".*"}}`, an `$or`
with such a branch). A find is bulk when its filter selects everything and no limit at or below
`BULK_ROWS` bounds it (MongoDB reads `limit: 0` as no limit); an aggregate when no stage filters or
limits it. The same is read from mongosh code (`db.users.find({})`, `db.getCollection("x").drop()`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from bastion.guard.policy.catalogue.bulk_rows import BULK_ROWS
from bastion.guard.policy.catalogue.view import PROSE_KEYS, CallView, name_words, norm_key, wanted_keys

_FILTER_KEYS = ("filter", "query", "where", "selector", "criteria", "conditions", "match", "predicate",
                "filterexpression", "keyconditionexpression")  # fmt: skip
_LIMIT_KEYS = ("limit", "max", "maxresults", "size", "top", "pagesize", "maxdocuments", "n", "maxitems")
_DOCUMENT_WORDS = frozenset({"mongo", "mongodb", "document", "documents", "docs", "firestore", "dynamo", "dynamodb",
                             "couch", "couchdb", "cosmos", "cosmosdb", "collection", "nosql", "atlas"})  # fmt: skip
_CONST_TRUE = frozenset({"true", "1", "return true", "return true;", "1 == 1", "1==1", "this"})
_SHELL = re.compile(
    r"\bdb\s*\.\s*(?:getCollection\(\s*['\"`][^'\"`]*['\"`]\s*\)|[A-Za-z_$][\w$]*)\s*\.\s*"
    r"(find|aggregate|drop|deleteMany|remove|updateMany|dropDatabase)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)"
)
_SHELL_DROP_DB = re.compile(r"\bdb\s*\.\s*dropDatabase\s*\(")
_SHELL_LIMIT = re.compile(r"^\s*\.\s*limit\s*\(\s*(\d+)\s*\)")


def _loads(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _cond_everything(cond: Any) -> bool:
    if not isinstance(cond, Mapping):
        return False
    for op, arg in cond.items():
        if op == "$exists" and arg in (True, 1):
            continue
        if op == "$ne" and arg is None:
            continue
        if op in ("$gt", "$gte") and (arg in (0, "", None) or (isinstance(arg, int | float) and arg < 0)):
            continue
        if op == "$regex" and arg in ("", ".*", "^", "^.*", ".*$", "^.*$"):
            continue
        return False
    return bool(cond)


def filter_everything(filt: Any) -> bool:
    """Whether a document filter holds for every document."""
    filt = _loads(filt)
    if filt is None or filt == "" or filt == {}:
        return True
    if not isinstance(filt, Mapping):
        return False
    for key, cond in filt.items():
        if key == "$or" and isinstance(cond, list):
            if not any(filter_everything(c) for c in cond):
                return False
        elif key == "$and" and isinstance(cond, list):
            if not all(filter_everything(c) for c in cond):
                return False
        elif key == "$where":
            if not (isinstance(cond, str) and cond.strip().lower() in _CONST_TRUE):
                return False
        elif key == "$expr":
            if cond is not True:
                return False
        elif not _cond_everything(cond):
            return False
    return True


def _unlimited(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return True
    return not isinstance(value, int | float) or isinstance(value, bool) or value <= 0 or value > BULK_ROWS


def _pipeline_unbounded(pipeline: Any) -> bool:
    pipeline = _loads(pipeline)
    if not isinstance(pipeline, list):
        return False
    for stage in pipeline:
        if not isinstance(stage, Mapping):
            continue
        if "$match" in stage and not filter_everything(stage["$match"]):
            return False
        if "$limit" in stage and not _unlimited(stage["$limit"]):
            return False
        if "$count" in stage or ("$group" in stage and "$push" not in json.dumps(stage["$group"], default=str)):
            return False
    return True


def _arg(call: CallView, keys: tuple[str, ...]) -> tuple[bool, Any]:
    wanted = wanted_keys(keys)
    for key, value in call.arguments.items():
        if norm_key(key if type(key) is str else str(key)) in wanted:
            return True, value
    return False, None


def _verbs(call: CallView) -> frozenset[str]:
    """The words of the tool name and of an operation named in the arguments (`{"operation": "deleteMany"}`)."""
    words = call.tool_words
    args = call.arguments
    if not isinstance(args, Mapping):
        return words
    for key in _OPERATION_KEYS:
        value = args.get(key)
        if value is not None and isinstance(value, str) and len(value) <= 40:
            words = words | name_words(value)
    return words


_OPERATION_KEYS = ("operation", "action", "op", "method", "command", "type")


def _reads_documents(call: CallView, words: frozenset[str]) -> bool:
    """A tool reading documents of a named collection (or a DynamoDB-style table scan); `words` are `_verbs(call)`."""
    if words & {"export", "dump"}:  # export_table, dump_collection: a whole table or collection out
        return _arg(call, ("collection", "coll", "collectionname", "table", "tablename"))[0]
    if words & {"find", "aggregate"}:
        return _arg(call, ("collection", "coll", "collectionname"))[0]
    if words & {"scan"} and _arg(call, ("tablename", "table"))[0]:
        return True
    return bool(
        words & {"query", "list", "read", "get", "fetch", "search", "scan"}
        and call.words & _DOCUMENT_WORDS
        and _arg(call, ("collection", "coll", "collectionname", "tablename"))[0]
    )


_ANY_DOCUMENT_VERB = frozenset({"many", "all", "export", "dump", "find", "aggregate", "scan", "query", "list", "read",
                                "get", "fetch", "search"})  # fmt: skip
"""`structured` finds nothing without one of these words: a bulk delete or update needs `many`/`all`, a read one of
`_reads_documents`' verbs."""


def structured(call: CallView) -> Iterator[tuple[str, str]]:
    """(operation, reason) for a document-database tool called with structured arguments."""
    words = _verbs(call)
    if "drop" in words and words & {"collection", "database", "db", "index", "indexes"}:
        yield "collection_drop", f"tool {call.tool} drops a collection or database"
        return
    if not isinstance(call.arguments, Mapping):
        return
    if call.prescreen and words.isdisjoint(_ANY_DOCUMENT_VERB):
        return  # pre-screen: every finding below needs one of these words
    has_filter, filt = _arg(call, _FILTER_KEYS)
    empty = not has_filter or filter_everything(filt)
    many = "many" in words or "all" in words
    if many and empty and words & {"delete", "remove"}:
        yield "document_delete_all", f"tool {call.tool} with a filter that selects every document"
    elif many and empty and words & {"update", "replace"}:
        yield "document_update_all", f"tool {call.tool} with a filter that selects every document"
    elif _reads_documents(call, words):
        has_pipeline, pipeline = _arg(call, ("pipeline", "stages"))
        if has_pipeline:
            if _pipeline_unbounded(pipeline):
                yield "unbounded_select", f"tool {call.tool}: a pipeline that neither filters nor limits"
        elif empty and _unlimited(_arg(call, _LIMIT_KEYS)[1]):
            yield "unbounded_select", f"tool {call.tool}: every document of the collection, no limit"


def shell_code(call: CallView) -> Iterator[tuple[str, str, str]]:
    """(operation, reason, path) for mongosh code in a string (`db.users.find({})`)."""
    for s in call.strings:
        if "db" not in s.value or "(" not in s.value or norm_key(s.key) in PROSE_KEYS:
            continue
        if _SHELL_DROP_DB.search(s.value):
            yield "collection_drop", "db.dropDatabase()", s.path
        for m in _SHELL.finditer(s.value):
            method, args = m.group(1), m.group(2)
            first = _first_argument(args)
            if method == "drop":
                yield "collection_drop", m.group(0)[:80], s.path
            elif method in ("deleteMany", "remove") and filter_everything(first):
                yield "document_delete_all", m.group(0)[:80], s.path
            elif method == "updateMany" and filter_everything(first):
                yield "document_update_all", m.group(0)[:80], s.path
            elif method == "find" and filter_everything(first):
                limit = _SHELL_LIMIT.match(s.value[m.end() :])
                if limit is None or _unlimited(int(limit.group(1))):
                    yield "unbounded_select", m.group(0)[:80], s.path
            elif method == "aggregate" and _pipeline_unbounded(_relaxed_json(args) or []):
                yield "unbounded_select", m.group(0)[:80], s.path


def _relaxed_json(text: str) -> Any:
    """A mongosh literal as JSON, when it is close enough (`{}`, `{ _id: {$exists: true} }`); else None."""
    text = text.strip()
    if not text:
        return None
    quoted = re.sub(r"([{,]\s*)(\$?[A-Za-z_][\w$]*)\s*:", r'\1"\2":', text.replace("'", '"'))
    try:
        return json.loads(quoted)
    except ValueError:
        return text


def _first_argument(args: str) -> Any:
    depth = 0
    for i, ch in enumerate(args):
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == "," and depth == 0:
            args = args[:i]
            break
    return _relaxed_json(args)
