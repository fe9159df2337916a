"""Who this process acts as when a change is made outside the HTTP API: ``<door>:<user>@<host>``.

The command line records its changes as ``cli:<user>@<host>`` and the Python facade as
``runtime:<user>@<host>`` (the operating-system login name and the host name), in the audit log
and as the author of what they store. The HTTP API records its caller instead (an API key, a
token's subject). A login name or host that cannot be read is left out, never guessed.
"""

from __future__ import annotations

import getpass
import socket

#: The longest principal a change records (``audit_log.principal``, ``created_by`` columns).
MAX_PRINCIPAL = 200


def login_name() -> str | None:
    """The operating-system login name of this process, or None when it cannot be told."""
    try:
        return getpass.getuser() or None
    except (KeyError, OSError):
        return None


def local_principal(door: str) -> str:
    """``<door>:<user>@<host>`` (``<door>:<user>`` without a host name, ``<door>`` alone without
    a login name), cut to :data:`MAX_PRINCIPAL` characters."""
    user = login_name()
    if user is None:
        return door
    host = socket.gethostname()
    principal = f"{door}:{user}@{host}" if host else f"{door}:{user}"
    return principal[:MAX_PRINCIPAL]


__all__ = ["MAX_PRINCIPAL", "local_principal", "login_name"]
