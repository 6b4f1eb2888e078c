"""The catalogue of named dangerous actions, understood by parsing.

`scan(tool, arguments, context)` walks every value of a call's (nested) arguments and returns
the catalogue entries it sees, as `Finding`s. The catalogue only finds; the policy engine
decides verdicts from the findings (worst severity / default action wins).

The predicates (`sql_operations`, `shell_findings`, `path_outside_roots`, `url_off_allowlist`,
`find_secrets`, ...) are pure and never raise on odd input, so policy rule conditions can use them.

Each name is imported from its module when first used, so a part that needs one family
(the audit redactor needs `secrets`, the result checks `injection`) does not load every
family's parsers: `bastion wrap` loads them with the first call it judges, not before it
answers `initialize`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.guard.policy.catalogue.base import Entry, Finding, ScanContext, Severity
    from bastion.guard.policy.catalogue.fs import path_outside_roots, sensitive_path
    from bastion.guard.policy.catalogue.net import url_off_allowlist
    from bastion.guard.policy.catalogue.registry import CATALOGUE, FAMILIES
    from bastion.guard.policy.catalogue.scanner import scan
    from bastion.guard.policy.catalogue.secrets import SecretMatch, find_secrets
    from bastion.guard.policy.catalogue.shell import ShellFinding, shell_findings
    from bastion.guard.policy.catalogue.sql import sql_operations

__all__ = [
    "CATALOGUE",
    "FAMILIES",
    "Entry",
    "Finding",
    "ScanContext",
    "SecretMatch",
    "Severity",
    "ShellFinding",
    "find_secrets",
    "path_outside_roots",
    "scan",
    "sensitive_path",
    "shell_findings",
    "sql_operations",
    "url_off_allowlist",
]

_HOME = {
    "Entry": "base",
    "Finding": "base",
    "ScanContext": "base",
    "Severity": "base",
    "path_outside_roots": "fs",
    "sensitive_path": "fs",
    "url_off_allowlist": "net",
    "CATALOGUE": "registry",
    "FAMILIES": "registry",
    "scan": "scanner",
    "SecretMatch": "secrets",
    "find_secrets": "secrets",
    "ShellFinding": "shell",
    "shell_findings": "shell",
    "sql_operations": "sql",
}
"""Where each exported name is defined (its module in this package)."""


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
