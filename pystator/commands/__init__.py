"""The ``pystator`` subcommands, one module per group (thin callers of the package's functions).

A command that changes the configuration (``machines sync|retire``, ``api-keys create|revoke``)
acts as ``cli:<login name>@<host>`` (``Actor.cli(command)`` of :mod:`pystator.services.audit`):
the service it calls records that principal as the author and in the audit log, with the command
as the row's route. This package module stays light: ``pystator --help`` imports it.
"""

from __future__ import annotations

from pystator.config.identity import local_principal, login_name


def cli_principal() -> str:
    """Who a command acts as in the registry and the key table: ``cli:<login name>@<host>``."""
    return local_principal("cli")


def cli_user() -> str:
    """The login name running the command (``cli`` when it cannot be told)."""
    return login_name() or "cli"
