"""`python -m bastion`: the `bastion` program (`bastion.cli.program`)."""

from bastion.cli.program import main

main()
