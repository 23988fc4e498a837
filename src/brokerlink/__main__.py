"""`python -m brokerlink` runs the CLI."""

from brokerlink.cli import main

main()
