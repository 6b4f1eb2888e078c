"""Destructive HTTP methods sent by generic HTTP tools: a DELETE is a deletion whatever tool carries it.

A `DELETE https://api.github.com/repos/o/r` through a `fetch`/`http_request` tool, or `curl -X
DELETE`, removes what `gh repo delete` would, without the tool name that tells. Any DELETE from a
generic HTTP tool is held (`net.api_delete`); one whose path ends at a top-level resource (a
repository, project, organisation, bucket, database, cluster, ... : `<collection>/<id>`, or GitHub's
`repos/<owner>/<name>`) is denied (`net.api_destroy_resource`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

_TOP_LEVEL = frozenset({"repos", "repositories", "projects", "orgs", "organizations", "organisations", "groups",
                        "buckets", "databases", "clusters", "instances", "zones", "accounts", "teams", "workspaces",
                        "apps", "applications", "services", "sites", "domains", "environments", "namespaces", "users",
                        "tenants", "subscriptions", "resourcegroups", "servers", "volumes", "snapshots", "backups",
                        "branches", "tables", "indexes", "collections", "spaces", "boards"})  # fmt: skip
_VERSION = re.compile(r"^(?:api|rest|v\d+(?:\.\d+)?|\d{4}-\d{2}-\d{2})$", re.I)
_OWNER_NAME = frozenset({"repos", "repositories"})


def destroys_resource(url: str) -> bool:
    """Whether a DELETE of `url` removes a whole top-level resource (its path ends at `<collection>/<id>`)."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return True
    segs = [s for s in path.split("/") if s and not _VERSION.match(s)]
    if len(segs) >= 3 and segs[-3].lower() in _OWNER_NAME:
        return True
    return len(segs) >= 2 and segs[-2].lower() in _TOP_LEVEL


def judge_delete(url: str) -> Iterator[tuple[str, str]]:
    """(entry id, reason) for a DELETE sent to `url` by a generic HTTP tool."""
    if destroys_resource(url):
        yield "net.api_destroy_resource", f"DELETE {url[:100]} removes a whole resource"
    else:
        yield "net.api_delete", f"DELETE {url[:100]}"


_GQL_MUTATION = re.compile(r"\bmutation\b")
_GQL_DESTROY = re.compile(r"\b(delete|destroy|remove|purge|drop|archive)([A-Z][A-Za-z]*)\s*\(")
_GQL_RESOURCES = frozenset({"repository", "repo", "project", "organization", "org", "group", "bucket", "database",
                            "cluster", "instance", "zone", "account", "team", "workspace", "app", "application",
                            "service", "site", "domain", "environment", "namespace", "user", "tenant", "subscription",
                            "server", "volume", "snapshot", "backup", "table", "collection"})  # fmt: skip


def graphql_deletes(text: str) -> Iterator[tuple[str, str]]:
    """(entry id, reason) for each deleting field of a GraphQL mutation (`deleteRepository(...)`)."""
    if "mutation" not in text or not _GQL_MUTATION.search(text):
        return
    for m in _GQL_DESTROY.finditer(text):
        field = m.group(1) + m.group(2)
        if m.group(2).lower() in _GQL_RESOURCES and m.group(1) != "archive":
            yield "net.api_destroy_resource", f"GraphQL mutation {field} removes a whole resource"
        else:
            yield "net.api_delete", f"GraphQL mutation {field}"
