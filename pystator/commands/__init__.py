"""The ``pystator`` subcommands, one module per group (thin callers of the package's functions)."""

from __future__ import annotations

import getpass


def cli_principal() -> str:
    """Who a command acts as in the registry and the key table: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
