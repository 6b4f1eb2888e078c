"""The catalogue of named dangerous actions, understood by parsing.

`scan(tool, arguments, context)` walks every value of a call's (nested) arguments and returns
the catalogue entries it sees, as `Finding`s. The catalogue only finds; the policy engine
decides verdicts from the findings (worst severity / default action wins).

The predicates (`sql_operations`, `shell_findings`, `path_outside_roots`, `url_off_allowlist`,
`find_secrets`, ...) are pure and never raise on odd input, so policy rule conditions can use them.
"""

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
