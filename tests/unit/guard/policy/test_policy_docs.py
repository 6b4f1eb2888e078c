"""The policy's documentation is complete and its examples load."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bastion.config import load_config
from bastion.guard.policy.config import (
    SQL_OPERATIONS,
    ConditionConfig,
    MatchConfig,
    PolicyConfig,
    RuleConfig,
    ServerPolicyConfig,
)

DOCS = Path(__file__).parents[4] / "docs"
MODELS: list[type[BaseModel]] = [PolicyConfig, RuleConfig, MatchConfig, ConditionConfig, ServerPolicyConfig]
KEYS = [(model.__name__, f.alias or name) for model in MODELS for name, f in model.model_fields.items()]


@pytest.mark.parametrize(("model", "key"), KEYS, ids=[f"{m}:{k}" for m, k in KEYS])
def test_every_policy_key_is_documented(model: str, key: str) -> None:
    for page in ("configuration.md", "policy.md"):
        assert f"`{key}`" in (DOCS / page).read_text(encoding="utf-8"), f"{model}.{key} is not in docs/{page}"


def test_every_sql_operation_is_documented() -> None:
    text = (DOCS / "policy.md").read_text(encoding="utf-8")
    for op in SQL_OPERATIONS:
        assert f"`{op}`" in text, op


def _as_config(block: Any) -> dict[str, Any] | None:
    if isinstance(block, list):
        block = {"policy": {"rules": block}}
    if not isinstance(block, dict) or "policy" not in block or "include" in block["policy"]:
        return None
    names = set(block["policy"].get("servers") or {}) | {"crm", "db"}
    return {"servers": {name: {"command": "never-started"} for name in names}, **block}


def test_policy_examples_load(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (DOCS / "policy.md").read_text(encoding="utf-8"), re.DOTALL)
    loaded = 0
    for index, text in enumerate(blocks):
        config = _as_config(yaml.safe_load(text))
        if config is None:
            continue
        path = tmp_path / f"{index}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        load_config(path)
        loaded += 1
    assert loaded >= 4
