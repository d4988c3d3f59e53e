"""Entry point for ``python -m specflowd``."""

from specflowd.cli import main

main()
