"""Merge server entries into a client's JSON config file without harming what else is there.

- A file that does not parse as JSON (comments, JSON5, a half-written file) is refused with
  the reason, never overwritten.
- Before the first change, the file is copied to `<file>.bastion-backup` (0600).
- Only the entries named are set; every other key and entry is kept as it was.
- The new file is written beside the old one and renamed over it (no half-written file),
  with mode 0600 (it holds bearer tokens); its folder is created 0700 when missing.
- Writing the same entries again changes nothing (and makes no backup).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKUP_SUFFIX = ".bastion-backup"


class ClientConfigError(Exception):
    """The client's file cannot be read or written safely; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    changed: bool
    backup: Path | None


def read_config(path: Path) -> dict[str, Any]:
    """The file's JSON object ({} when there is no file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ClientConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientConfigError(
            f"{path} is not plain JSON (line {exc.lineno}: {exc.msg}); Bastion does not rewrite it. "
            "Add the entry printed without --write by hand"
        ) from exc
    if not isinstance(document, dict):
        raise ClientConfigError(f"{path} does not hold a JSON object; Bastion does not rewrite it")
    return document


def merged(document: Mapping[str, Any], key_path: Sequence[str], entries: Mapping[str, Any]) -> dict[str, Any]:
    """`document` with `entries` set under `key_path` (created as needed), everything else kept."""
    result: dict[str, Any] = json.loads(json.dumps(document))
    node = result
    for depth, key in enumerate(key_path):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            where = ".".join(key_path[: depth + 1])
            raise ClientConfigError(f"`{where}` in the client's file is not an object; Bastion does not rewrite it")
        node = child
    node.update(entries)
    return result


def write_entries(path: Path, key_path: Sequence[str], entries: Mapping[str, Any]) -> Written:
    """Merge `entries` into the file at `path` (see the module docstring)."""
    existed = path.exists()
    current = read_config(path)
    updated = merged(current, key_path, entries)
    if existed and updated == current:
        return Written(path, changed=False, backup=None)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    backup = None
    if existed:
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        _write_private(backup, path.read_bytes())
    _write_private(path, (json.dumps(updated, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return Written(path, changed=True, backup=backup)


def _write_private(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
