"""The `audit` section of bastion.yaml: failure behaviour, storage mode, backend, retention."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from bastion.audit.anchor import KEY_ENV, AuditAnchor, anchor_at
from bastion.audit.pii import PiiKind
from bastion.audit.redact import AuditMode, ResultsMode
from bastion.audit.retention import Retention, parse_duration
from bastion.audit.store import Durability
from bastion.config_errors import config_problem


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


class RetentionConfig(BaseModel):
    """How much of the audit log to keep. Unset: keep everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_age: str | None = None
    max_events: Annotated[int, BeforeValidator(_not_bool), Field(gt=0)] | None = None

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                if parse_duration(value) <= 0:
                    raise ValueError
            except ValueError:
                raise config_problem(f"`{value}` is not a positive duration", "write e.g. 30d, 12h or 90m") from None
        return value

    def retention(self) -> Retention:
        return Retention(
            max_age_s=parse_duration(self.max_age) if self.max_age is not None else None,
            max_events=self.max_events,
        )


class AuditConfig(BaseModel):
    """The `audit` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_failure: Literal["refuse", "allow"] = "refuse"
    mode: AuditMode = "redacted"
    results: ResultsMode | None = None
    """How results are stored; unset: as `mode` says."""
    redact_pii: tuple[PiiKind, ...] = ()
    """Personal data masked in every recorded string: `email`, `phone`, `card`."""
    url: str | None = Field(default=None, repr=False)
    durability: Durability = "power"
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    key_file: Path | None = None
    """The key that signs the log's head (default `data_dir/audit.key`; `BASTION_AUDIT_KEY` wins)."""
    head_file: Path | None = None
    """Where the writer leaves the latest signed head (default `data_dir/audit.head`)."""

    @field_validator("key_file", "head_file")
    @classmethod
    def _relative_to_config(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        source = info.context.get("source") if isinstance(info.context, dict) else None
        return ((Path(source).parent if source else Path.cwd()) / path.expanduser()).resolve()

    def anchor(self, data_dir: Path, url: str | None) -> AuditAnchor | None:
        """The anchor of the log at `url` (see `bastion.audit.anchor`): its key and head file.

        A log of its own (SQLite) is always anchored, its key made in `data_dir` at the first
        start. A shared one (PostgreSQL) is anchored when its key is configured
        (`BASTION_AUDIT_KEY` or `key_file`, the same on every replica); None otherwise: each
        replica would otherwise make a key of its own and refuse the others' heads."""
        shared = url is not None and url.startswith(("postgresql://", "postgres://"))
        if shared and self.key_file is None and not os.environ.get(KEY_ENV):
            return None
        return anchor_at(data_dir, self.key_file, self.head_file)

    @field_validator("redact_pii", mode="before")
    @classmethod
    def _pii_list(cls, value: object) -> object:
        return () if value is None else value  # `redact_pii:` with nothing after it

    @field_validator("retention", mode="before")
    @classmethod
    def _empty_retention(cls, value: object) -> object:
        return {} if value is None else value  # a `retention:` with every key commented out

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
            raise config_problem(
                f"`{url.split(':', 1)[0]}` is not a supported audit store",
                "use postgresql://user@host/db, sqlite:///path/audit.db, or leave it unset for data_dir/audit.db",
            )
        return url
