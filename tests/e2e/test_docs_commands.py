"""Every shell command README.md and docs/quickstart.md show still works as shown.

Each ```sh block's commands run in order through bash, in a scratch folder of their own per
document, with this checkout's .venv standing in for the `.venv` the docs create (so the
`servers` extra's MCP servers come from it). `bastion up` is started, checked to serve (and
to print what the document says it prints), left running for the commands after it, and
stopped at the end. What cannot run here is in `SKIPPED`, with the reason; the test fails
when an entry no longer matches a command the documents show. What the docs leave for the
reader to fill in is in `PLACEHOLDERS`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from bastion.config import default_config_text
from tests.e2e.conftest import STARTUP_TIMEOUT, VENV_BIN, LineReader

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/quickstart.md")
FENCE = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
OUTPUT_FENCE = re.compile(r"^```text\n(.*?)^```", re.S | re.M)
VARYING = re.compile(
    r"(http://127\.0\.0\.1:8750)|(?<=Bastion )\d+\.\d+\.\d+|(?:/path/to|/home/me/bastion)/\S*|bst_4f1c9a2e_\.\.\."
)
"""What a printed banner in the docs shows that differs in each run: the URL, the version, paths, the token."""

# Command (as shown, comments left out) -> why it is not run here.
SKIPPED = {
    "scripts/up": "installs bubblewrap (apt-get) and the checkout (pip); `bastion up` is run in its place",
    "scripts/test": "runs the whole suite, this test among it",
    "python3 -m venv .venv": "the .venv the docs create is the one this test runs in",
    ".venv/bin/pip install -e '.[servers]'": "installs this checkout with the servers extra: it is installed",
}
STANDS_IN_FOR = {"scripts/up": "bastion up"}
LONG_RUNNING = {"bastion up", ".venv/bin/bastion up"}
PLACEHOLDERS = {
    "http://127.0.0.1:8750": "the gateway's URL (a free port: test runs share the host)",
    "4f1c9a2e": "the id of the token the previous `token create` made",
    "$TOKEN": "the agent token `bastion up` printed on its first start",
}
EXPECTED_OUTPUT = {"curl": '"protocolVersion"'}
"""A command starting with the key must print this (curl -s exits 0 whatever the HTTP status)."""


@dataclass(frozen=True)
class Command:
    document: str
    line: int
    text: str
    """As shown, continuation lines joined."""

    @property
    def key(self) -> str:
        return shlex.join(shlex.split(self.text, comments=True))

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {self.text}"


def commands_of(document: str) -> list[Command]:
    source = (ROOT / document).read_text(encoding="utf-8")
    found = []
    for block in FENCE.finditer(source):
        first_line = source[: block.start(1)].count("\n") + 1
        pending = ""
        for offset, line in enumerate(block[1].splitlines()):
            if line.endswith("\\"):
                pending += line[:-1]
                continue
            text = (pending + line).strip()
            pending = ""
            if text and not text.startswith("#"):
                found.append(Command(document, first_line + offset, text))
    return found


def printed_banner(document: str) -> list[str]:
    """The lines the document says `bastion up` prints."""
    source = (ROOT / document).read_text(encoding="utf-8")
    block = next(b[1] for b in OUTPUT_FENCE.finditer(source) if "is serving on" in b[1])
    return [line for line in block.splitlines() if line and not line.startswith("Wrote an example")]


def banner_pattern(line: str) -> re.Pattern[str]:
    """A printed line with what varies from run to run (port, version, paths, token) left open."""
    parts, last = [], 0
    for varying in VARYING.finditer(line):
        parts += [re.escape(line[last : varying.start()]), r"http://127\.0\.0\.1:\d+" if varying[1] else r"\S+"]
        last = varying.end()
    return re.compile("^" + "".join(parts) + re.escape(line[last:]) + "$")


class Scratch:
    """A folder to run one document's commands in, and the gateway they may start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env.pop("BASTION_CONFIG", None)
        self.base_url = ""
        self.token_id = ""
        self.gateway: subprocess.Popen[str] | None = None

    def shown_to_run(self, command: Command) -> str:
        text = command.text.replace(".venv/bin/", f"{VENV_BIN}/")
        if self.base_url:
            text = text.replace("http://127.0.0.1:8750", self.base_url)
        return text.replace("4f1c9a2e", self.token_id) if self.token_id else text

    def run(self, command: Command) -> None:
        done = subprocess.run(
            ["bash", "-c", self.shown_to_run(command)],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{command}\nexit {done.returncode}:\n{output}"
        for start, expected in EXPECTED_OUTPUT.items():
            if command.key.startswith(start):
                assert expected in output, f"{command}\n{output}"
        if created := re.search(r"^Created token (\S+) ", done.stdout, re.M):
            self.token_id = created[1]

    def start_gateway(self, command: Command, banner: list[str]) -> None:
        """`bastion up` on a fresh folder, as the docs have it, but listening on a free port."""
        config = default_config_text()
        assert "listen: 127.0.0.1:8750\n" in config
        (self.folder / "bastion.yaml").write_text(config.replace("127.0.0.1:8750", "127.0.0.1:0"), encoding="utf-8")
        self.gateway = subprocess.Popen(
            ["bash", "-c", "exec " + self.shown_to_run(command)],
            cwd=self.folder,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        reader = LineReader(self.gateway.stdout)
        printed = [reader.wait_for(r"is serving on (http://\S+)", STARTUP_TIMEOUT)]
        self.base_url = printed[0][1]
        token = reader.wait_for(r"^bst_\S+$", 30)[0]
        self.env["TOKEN"] = token
        lines = [line for line in reader.lines if not line.startswith("Wrote an example")]
        for shown, actual in zip(banner, lines, strict=True):
            assert banner_pattern(shown).match(actual), f"{command}: printed\n  {actual}\nthe docs show\n  {shown}"
        assert httpx2.get(f"{self.base_url}/healthz", timeout=10).status_code == 200

    def stop_gateway(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.terminate()
            try:
                self.gateway.wait(timeout=30)
            finally:
                if self.gateway.poll() is None:
                    self.gateway.kill()
                    self.gateway.wait(timeout=5)


@contextmanager
def scratch(folder: Path) -> Iterator[Scratch]:
    folder.mkdir(parents=True)
    made = Scratch(folder)
    try:
        yield made
    finally:
        made.stop_gateway()


def test_the_skip_table_names_only_commands_the_docs_show() -> None:
    shown = {command.key for document in DOCUMENTS for command in commands_of(document)}
    stale = set(SKIPPED) - shown
    assert not stale, f"SKIPPED lists commands no document shows any more: {stale}"
    assert set(STANDS_IN_FOR) <= set(SKIPPED)
    texts = "\n".join(command.text for document in DOCUMENTS for command in commands_of(document))
    assert all(placeholder in texts for placeholder in PLACEHOLDERS), "a placeholder is no longer used"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_command_shown_works_as_shown(document: str, tmp_path: Path) -> None:
    commands = commands_of(document)
    assert commands, f"no ```sh commands found in {document}"
    banner = printed_banner(document)
    with scratch(tmp_path / "scratch") as here:
        for command in commands:
            stand_in = STANDS_IN_FOR.get(command.key)
            if stand_in is not None:
                command = Command(command.document, command.line, stand_in)
            elif command.key in SKIPPED:
                continue
            if command.key in LONG_RUNNING:
                here.start_gateway(command, banner)
            else:
                here.run(command)
        assert here.gateway is not None, f"{document} never starts the gateway"
