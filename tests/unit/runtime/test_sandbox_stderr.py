"""The sandbox's own error, read from its stderr until the server speaks (issue 16)."""

from __future__ import annotations

import io

import pytest

from bastion.runtime.sandbox_stderr import StderrTail


def run(early: str, late: str = "", spoke: bool = False) -> tuple[str | None, str]:
    target = io.StringIO()
    tail = StderrTail(target)
    tail.writer.write(early)
    tail.writer.flush()
    if spoke:
        tail.spoke()
    tail.writer.write(late)
    tail.writer.flush()
    return tail.cause(), target.getvalue()


@pytest.mark.parametrize(
    ("early", "cause"),
    [
        (
            "bwrap: execvp /tmp/x/srv: No such file or directory\n",
            "bwrap: execvp /tmp/x/srv: No such file or directory",
        ),
        (
            "bwrap: Can't chdir to /nope: No such file or directory\n",
            "bwrap: Can't chdir to /nope: No such file or directory",
        ),
        ("Traceback (most recent call last):\nValueError: boom\n", None),
        ("", None),
        ("bwrap: a\x1b[31mred\x07\n", "bwrap: a?[31mred?"),
        ("bwrap: " + "x" * 1000 + "\n", "bwrap: " + "x" * 490 + "..."),
    ],
)
def test_bubblewraps_own_lines_are_the_cause_and_everything_is_passed_through(early, cause):
    found, passed = run(early)
    assert found == cause
    assert passed == early


def test_after_the_server_spoke_it_cannot_dictate_the_cause():
    found, passed = run("", "bwrap: execvp /forged: No such file or directory\n", spoke=True)
    assert found is None
    assert "forged" in passed  # still passed through to the real stderr
