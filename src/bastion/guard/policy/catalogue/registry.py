"""The catalogue: every family's entries, by id, and the detectors that find them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

from bastion.guard.policy.catalogue import (
    browser,
    cloud,
    comm,
    fs,
    injection,
    net,
    payment,
    secrets,
    shell,
    sql,
    vcs,
)
from bastion.guard.policy.catalogue.base import Entry, Finding
from bastion.guard.policy.catalogue.view import CallView

_MODULES = (shell, fs, sql, net, secrets, comm, payment, vcs, cloud, browser, injection)

FAMILIES: tuple[str, ...] = (
    "shell",
    "fs",
    "sql",
    "net",
    "secrets",
    "comm",
    "payment",
    "vcs",
    "cloud",
    "browser",
    "injection",
)

CATALOGUE: Mapping[str, Entry] = MappingProxyType({e.id: e for m in _MODULES for e in m.ENTRIES})
"""Every catalogue entry by id."""

DETECTORS: tuple[Callable[[CallView], Iterator[Finding]], ...] = tuple(m.detect for m in _MODULES)
