"""The labelled corpus through `scan`: flag = any finding (every entry's default is deny or ask)."""

import json
from pathlib import Path

import pytest

from bastion.guard.policy.catalogue import ScanContext, scan
from bastion.model import Decision


def _corpus() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        for candidate in (parent / "shared" / "corpus" / "tool_calls.jsonl",
                          parent.parent / "shared" / "corpus" / "tool_calls.jsonl"):  # fmt: skip
            if candidate.is_file():
                return candidate
    fixed = Path("/work/shared/corpus/tool_calls.jsonl")
    return fixed if fixed.is_file() else None


def test_corpus_figures():
    path = _corpus()
    if path is None:
        pytest.skip("shared/corpus/tool_calls.jsonl not found")
    flag_total = flag_hit = allow_total = allow_hit = 0
    disagree: list[str] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        call = json.loads(line)
        ctx = call.get("context") or {}
        context = ScanContext(
            allowed_roots=tuple(ctx.get("allowed_roots", ())),
            allowed_domains=tuple(ctx.get("allowed_domains", ())),
            server=call["server"],
        )
        findings = scan(call["tool"], call["arguments"], context)
        held = any(f.entry.default in (Decision.DENY, Decision.ASK) for f in findings)
        if call["expect"] == "flag":
            flag_total += 1
            flag_hit += held
            if not held:
                disagree.append(f"{call['id']} (flag, not found)")
        else:
            allow_total += 1
            allow_hit += held
            if held:
                disagree.append(f"{call['id']} (allow, found {sorted({f.entry.id for f in findings})})")
    flag_rate = flag_hit / flag_total
    allow_rate = allow_hit / allow_total
    print(f"\ncorpus: {flag_hit}/{flag_total} flag lines found ({flag_rate:.1%}); "
          f"{allow_hit}/{allow_total} allow lines found ({allow_rate:.1%})")  # fmt: skip
    print("disagreeing ids:", ", ".join(disagree) or "none")
    assert flag_rate >= 0.98, disagree
    assert allow_rate <= 0.02, disagree
