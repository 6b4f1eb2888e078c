"""The whole labelled corpus through `bastion policy check`, with the `recommended` profile.

Corpus: ../shared/corpus/tool_calls.jsonl next to the repository (format in its README).
Targets (issue 3): at least 98% of `flag` lines denied or held, at most 2% of `allow`
lines not allowed. Both figures and every disagreeing id are printed (`pytest -s`).
Nothing here knows any corpus entry: the config has one placeholder server per server name.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import run_cli

pytestmark = pytest.mark.e2e

CORPUS = Path(
    os.environ.get("BASTION_CORPUS")
    or Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "tool_calls.jsonl"
)
"""`BASTION_CORPUS` names it elsewhere (a git worktree is not next to `shared/`)."""
CALL_KEYS = ("id", "server", "tool", "arguments", "context")


def test_recommended_profile_on_the_corpus(tmp_path: Path) -> None:
    if not CORPUS.is_file():
        warnings.warn(f"corpus not found at {CORPUS}: the policy corpus test did not run", stacklevel=1)
        pytest.skip(f"CORPUS MISSING: {CORPUS} does not exist; the 98%/2% targets were NOT checked")
    labelled = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    servers = sorted({line["server"] for line in labelled})
    config = tmp_path / "bastion.yaml"
    # Placeholder commands: `policy check` never starts a server.
    config.write_text(
        yaml.safe_dump(
            {"servers": {name: {"command": "never-started"} for name in servers}, "policy": {"profile": "recommended"}}
        ),
        encoding="utf-8",
    )
    calls = tmp_path / "calls.jsonl"
    calls.write_text(
        "".join(json.dumps({k: line[k] for k in CALL_KEYS if k in line}) + "\n" for line in labelled), encoding="utf-8"
    )
    done = run_cli("policy", "check", "--config", str(config), "--calls", str(calls), timeout=300)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in results] == [line["id"] for line in labelled], "one result per call, in order"

    flags = [(line, r) for line, r in zip(labelled, results, strict=True) if line["expect"] == "flag"]
    allows = [(line, r) for line, r in zip(labelled, results, strict=True) if line["expect"] == "allow"]
    missed = [line["id"] for line, r in flags if r["decision"] not in ("deny", "ask")]
    blocked = [line["id"] for line, r in allows if r["decision"] != "allow"]
    caught = 1 - len(missed) / len(flags)
    false_alarms = len(blocked) / len(allows)
    print(f"\ncorpus: {len(labelled)} calls ({len(flags)} flag, {len(allows)} allow)")
    print(f"flag lines denied or held: {caught:.1%} (target >= 98%); missed: {missed}")
    for line, _ in flags:
        if line["id"] in missed:
            print(f"  missed {line['id']} [{line['category']}]: {line['why']}")
    print(f"allow lines not allowed:   {false_alarms:.1%} (target <= 2%); blocked: {blocked}")
    for line, r in allows:
        if line["id"] in blocked:
            print(f"  blocked {line['id']} by {r['rule']}: {r['reason']}")
    assert caught >= 0.98, f"only {caught:.1%} of flag lines denied or held; missed {missed}"
    assert false_alarms <= 0.02, f"{false_alarms:.1%} of allow lines not allowed: {blocked}"
