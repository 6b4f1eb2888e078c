"""The `bastion` program: the CLI, started with the cycle collector paused (`collector.py`)."""

from __future__ import annotations

import sys

from bastion.cli import collector


def main() -> None:
    """The `bastion` console script."""
    collector.pause()
    from bastion.cli.main import main as cli

    sys.exit(cli())
