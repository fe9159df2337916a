"""``pystator api`` (serve the HTTP API), ``pystator api-keys …``, ``pystator token`` and
``pystator config show``."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from datetime import timedelta

import uvicorn

from pystator.api.auth import Authenticator, check_bind, mint_token
from pystator.commands import cli_user
from pystator.config.logs import configure_logging
from pystator.config.settings import ENV_PREFIX, Settings, describe_settings, load_settings
from pystator.fleet.composition import command_engine
from pystator.fleet.startup import wait_for_database
from pystator.services import api_keys
from pystator.services.api_keys import Role
from pystator.services.audit import Actor

APP = "pystator.api.main:app"
ROLES = tuple(r.value for r in Role)
DEFAULT_TOKEN_TTL_SECONDS = 3600


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``api``, ``api-keys``, ``token`` and ``config`` commands."""
    api = sub.add_parser("api", help="serve the HTTP API (REST, OpenAPI at /docs)")
    api.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=None, help="port (default 8000)")
    api.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    api.add_argument("--access-log", action="store_true", help="log every request")
    api.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    api.set_defaults(func=run_api)

    keys = sub.add_parser("api-keys", help="API keys of the HTTP API")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = ksub.add_parser("create", help="create a key (printed once; stored hashed)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", default=None, help="what the key is for (default: the role)")
    create.set_defaults(func=cmd_create_key)
    listing = ksub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=cmd_list_keys)
    revoke = ksub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(func=cmd_revoke_key)

    token = sub.add_parser("token", help="print a JWT signed with PYSTATOR_API_JWT_SECRET")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--subject", default=None, help="who the token is for (default: $USER)")
    token.add_argument("--ttl", type=int, default=DEFAULT_TOKEN_TTL_SECONDS, help="seconds")
    token.set_defaults(func=cmd_token)

    config = sub.add_parser("config", help="effective settings")
    csub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser("show", help="every setting, its value (secrets masked), its source")
    show.set_defaults(func=cmd_config_show)


def api_settings(args: argparse.Namespace) -> Settings:
    """Settings with ``--host`` / ``--port`` applied."""
    settings = load_settings()
    if args.host:
        settings = replace(settings, api_host=args.host)
    if args.port:
        settings = replace(settings, api_port=args.port)
    return settings


def run_api(args: argparse.Namespace) -> int:
    """Check that auth allows the bind address, then serve with uvicorn."""
    settings = api_settings(args)
    configure_logging(settings.log_format, args.log_level)
    wait_for_database(settings, process="api")  # not serving yet: readiness stays red
    with command_engine(settings, prepare=True) as engine:
        check_bind(settings.api_host, Authenticator.from_settings(settings, engine))
    # The server's processes import the app and read their settings from the environment:
    # hand them the bind address (the app refuses to start on it without auth, too).
    os.environ[ENV_PREFIX + "API_HOST"] = settings.api_host
    os.environ[ENV_PREFIX + "API_PORT"] = str(settings.api_port)
    uvicorn.run(
        APP,
        host=settings.api_host,
        port=settings.api_port,
        workers=max(args.workers, 1),
        access_log=args.access_log,
        log_level=args.log_level,
        proxy_headers=False,
    )
    return 0


def cmd_create_key(args: argparse.Namespace) -> int:
    """``api-keys create``: the key alone on stdout (for ``KEY=$(…)``), the rest on stderr."""
    settings = load_settings()
    with command_engine(settings, prepare=True) as engine:
        new = api_keys.create_key(
            engine, role=args.role, name=args.name or args.role, by=Actor.cli("api-keys create")
        )
    print(
        f"created API key {new.record.id} ({new.record.role}); it is shown only now:",
        file=sys.stderr,
    )
    print(new.secret)
    return 0


def cmd_list_keys(args: argparse.Namespace) -> int:
    """``api-keys list``."""
    with command_engine(load_settings()) as engine:
        keys = api_keys.list_keys(engine, include_revoked=args.all)
    for key in keys:
        revoked = f"  revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else ""
        print(
            f"{key.id:>5}  {key.role:<8}  {key.prefix}…  {key.name}  "
            f"(by {key.created_by}, {key.created_at:%Y-%m-%d %H:%M}){revoked}"
        )
    return 0


def cmd_revoke_key(args: argparse.Namespace) -> int:
    """``api-keys revoke ID``."""
    with command_engine(load_settings()) as engine:
        record = api_keys.revoke_key(engine, args.id, by=Actor.cli("api-keys revoke"))
    print(f"revoked API key {record.id} ({record.name})")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """``token``: a JWT for ``--role``, valid ``--ttl`` seconds."""
    subject = args.subject or cli_user()
    print(
        mint_token(
            load_settings(),
            subject=subject,
            role=Role(args.role),
            ttl=timedelta(seconds=args.ttl),
        )
    )
    return 0


def cmd_config_show(_args: argparse.Namespace) -> int:
    """``config show``: name, value and source of every setting."""
    rows = describe_settings()
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value or '-'}  ({source})")
    return 0
