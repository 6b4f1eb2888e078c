"""docs/security.md names a test for each claim: every test it names exists."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY_DOC = ROOT / "docs" / "security.md"


def test_every_test_the_threat_model_names_exists() -> None:
    named = set(re.findall(r"`(tests/[\w/*.]+\.py)(?:::(\w+))?", SECURITY_DOC.read_text(encoding="utf-8")))
    assert named
    missing = []
    for path, function in sorted(named):
        files = sorted(ROOT.glob(path))
        if not files:
            missing.append(path)
            continue
        if function and not any(re.search(rf"def {function}\b", f.read_text(encoding="utf-8")) for f in files):
            missing.append(f"{path}::{function}")
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"


def test_every_file_of_the_adversarial_suite_backs_a_claim() -> None:
    named = re.findall(r"`(tests/security/[\w*.]+\.py)", SECURITY_DOC.read_text(encoding="utf-8"))
    for suite in sorted((ROOT / "tests" / "security").glob("test_*.py")):
        path = f"tests/security/{suite.name}"
        assert any(fnmatch.fnmatch(path, pattern) for pattern in named), f"{path} is not in docs/security.md"
