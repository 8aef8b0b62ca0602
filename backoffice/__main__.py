"""``python -m backoffice``: the same command line as ``backoffice`` (serve starts its job worker this way)."""

from backoffice.cli import main

main()
