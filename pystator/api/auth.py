"""Who is calling: API keys and JWT bearer tokens, roles, and when auth may be off.

Credentials travel as ``Authorization: Bearer <token>`` (an API key or a JWT) or
``X-API-Key: <key>``. A JWT is checked against ``PYSTATOR_API_JWT_SECRET`` (HS256 by default) or
``PYSTATOR_API_JWT_PUBLIC_KEY`` (RS256 by default; ``PYSTATOR_API_JWT_ALGORITHM`` overrides), must
carry ``sub`` and ``exp``, and names its role in a ``role`` claim (or a ``roles`` list: the
highest known one counts); ``aud`` / ``iss`` are checked when configured.

**Auth is off only for this host's own requests.** Auth is *configured* when a JWT key is set or
the database holds an active API key. When it is not, a request without credentials acts as an
admin called ``local`` only if all of these hold (:meth:`Authenticator.local_refusal`):

* it arrived on a loopback address (127.0.0.0/8, ::1);
* it carries none of the headers a reverse proxy adds (:data:`PROXY_HEADERS`): behind nginx,
  Caddy or a tunnel on the same host every request arrives on loopback, from anyone;
* its ``Host`` header names this machine: ``localhost``, ``127.0.0.1`` or ``[::1]`` with any port,
  or a name listed in ``PYSTATOR_API_LOCAL_HOSTS``. A web page whose own name was rebound to
  127.0.0.1 (DNS rebinding) reaches the server on loopback too, but its requests carry its name.

Anything else is refused with 401 saying which rule it broke, and ``pystator api`` refuses to
start bound to a non-loopback address (:func:`check_bind`). Once configured, every request needs
credentials, on any address.

Checked keys are cached for :data:`KEY_CACHE_SECONDS` per process, so a key revoked through
another process stops working within that time (at once in the process that revoked it).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy.engine import Engine
from starlette.requests import HTTPConnection

from pystator.config.settings import Settings, is_host_name
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import AuthenticationError, SettingsError
from pystator.services.api_keys import (
    Role,
    active_key_count,
    hash_key,
    looks_like_key,
    verify_key,
)

#: Seconds a checked API key (valid or not) and the "any key exists" answer are cached.
KEY_CACHE_SECONDS = 5.0
#: Most cached key checks per process (the cache is cleared when it is full).
KEY_CACHE_SIZE = 4096
#: Principal of unauthenticated requests on loopback while auth is not configured.
LOCAL_PRINCIPAL = "local"
#: Leeway for ``exp`` / ``nbf`` (clock skew between the token's issuer and this host).
JWT_LEEWAY_SECONDS = 30
#: Headers a reverse proxy adds: a request carrying one was not made on this host directly.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")
#: ``Host`` names (any port) that always mean this machine.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller: a name, a role, and how they proved it (``key``, ``jwt`` or
    ``loopback``)."""

    name: str
    role: Role
    via: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """How a request reached the server: the address it arrived on, its ``Host`` header and the
    proxy headers it carries — what decides whether it may act as the local admin."""

    server_host: str | None
    host: str | None
    proxy_headers: tuple[str, ...] = ()

    @classmethod
    def of(cls, connection: HTTPConnection) -> Arrival:
        """The arrival of a request (or WebSocket) as the ASGI server saw it."""
        server = connection.scope.get("server")
        headers = connection.headers
        return cls(
            server_host=str(server[0]) if server else None,
            host=headers.get("host"),
            proxy_headers=tuple(h for h in PROXY_HEADERS if h.lower() in headers),
        )


def host_name(header: str | None) -> str | None:
    """The name in a ``Host`` header, lower-cased and without its port (``[::1]:8000`` →
    ``[::1]``); None when the header is missing or is not ``name[:port]``."""
    text = (header or "").strip().lower()
    name, colon, port = text.rpartition(":")
    if not colon or name.endswith(":") or (name.startswith("[") and not name.endswith("]")):
        name = text  # no port (or a bare IPv6 address, which is_host_name refuses)
    elif not port.isdigit():
        return None
    return name if is_host_name(name) else None


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _TtlCache:
    """A small thread-safe cache whose entries expire."""

    def __init__(self, seconds: float, monotonic: Callable[[], float]) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        now = self._monotonic()
        item = self._items.get(key)
        if item is not None and item[0] > now:
            return item[1]
        value = load()
        with self._lock:
            if len(self._items) >= KEY_CACHE_SIZE:
                self._items.clear()
            self._items[key] = (now + self.seconds, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Authenticator:
    """Turns a request's credentials into a :class:`Principal` (thread-safe)."""

    def __init__(
        self,
        engine: Engine,
        *,
        jwt_key: str | None = None,
        jwt_algorithm: str = "HS256",
        audience: str | None = None,
        issuer: str | None = None,
        local_hosts: tuple[str, ...] = (),
        cache_seconds: float = KEY_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        #: ``Host`` names that mean this machine: :data:`LOCAL_HOSTS`, then the operator's.
        self.local_hosts = tuple(dict.fromkeys((*LOCAL_HOSTS, *local_hosts)))
        self.jwt_key = jwt_key
        self.jwt_algorithm = jwt_algorithm
        self.audience = audience
        self.issuer = issuer
        self._cache = _TtlCache(cache_seconds, monotonic)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> Authenticator:
        """The authenticator ``settings`` describe (reads a public key file if one is named)."""
        key, algorithm = jwt_verification_key(settings)
        return cls(
            engine,
            jwt_key=key,
            jwt_algorithm=algorithm,
            audience=settings.api_jwt_audience,
            issuer=settings.api_jwt_issuer,
            local_hosts=settings.local_host_names,
        )

    def configured(self) -> bool:
        """True when a JWT key is set or an active API key exists (cached briefly)."""
        if self.jwt_key:
            return True
        return bool(self._cache.get("#any-key", lambda: active_key_count(self.engine) > 0))

    def forget_keys(self) -> None:
        """Drop cached key checks (after this process created or revoked a key)."""
        self._cache.clear()

    def authenticate(self, token: str | None, *, arrival: Arrival) -> Principal:
        """The principal for ``token`` (None: no credentials) on a request that arrived as
        ``arrival``; :class:`AuthenticationError` when credentials are missing where needed,
        unknown, revoked, expired or badly signed."""
        if token is None:
            if self.configured():
                raise AuthenticationError(
                    "credentials required: send 'Authorization: Bearer <API key or JWT>' or "
                    "'X-API-Key: <key>'"
                )
            refusal = self.local_refusal(arrival)
            if refusal is not None:
                raise refusal
            return Principal(name=LOCAL_PRINCIPAL, role=Role.ADMIN, via="loopback")
        if looks_like_key(token):
            return self._key_principal(token)
        return self._jwt_principal(token)

    def local_refusal(self, arrival: Arrival) -> AuthenticationError | None:
        """Why a request without credentials may not act as the local admin while auth is not
        configured (None: it may). ``details["reason"]`` is ``address``, ``proxy`` or ``host``."""
        if not is_loopback(arrival.server_host):
            return AuthenticationError(
                "credentials required: send 'Authorization: Bearer <API key or JWT>' or "
                "'X-API-Key: <key>' (auth is not configured on this server, and without it only "
                "requests on a loopback address are answered)",
                details={"reason": "address"},
            )
        if arrival.proxy_headers:
            return AuthenticationError(
                "behind a proxy: configure an API key or JWT. This request carries "
                f"{', '.join(arrival.proxy_headers)}, so it was relayed from elsewhere; while "
                "auth is not configured only requests made on this host act as the local admin",
                details={"reason": "proxy", "headers": list(arrival.proxy_headers)},
            )
        if host_name(arrival.host) not in self.local_hosts:
            names = ", ".join(self.local_hosts)
            return AuthenticationError(
                f"Host {arrival.host or ''!r} is not a local name: while auth is not configured "
                f"only requests addressed to {names} (any port) act as the local admin. If this "
                "name is this machine, add it to PYSTATOR_API_LOCAL_HOSTS; otherwise configure "
                "an API key or JWT",
                details={"reason": "host", "host": arrival.host},
            )
        return None

    def trusted(self) -> str:
        """Who acts as the local admin while auth is off, in words (the start-up log's)."""
        return (
            "requests on a loopback address, without proxy headers ("
            + ", ".join(PROXY_HEADERS)
            + "), whose Host is "
            + ", ".join(self.local_hosts)
            + " (any port)"
        )

    def _key_principal(self, token: str) -> Principal:
        record = self._cache.get("key:" + hash_key(token), lambda: verify_key(self.engine, token))
        if record is None:
            raise AuthenticationError("unknown or revoked API key")
        return Principal(name=f"key:{record.id}:{record.name}", role=Role(record.role), via="key")

    def _jwt_principal(self, token: str) -> Principal:
        if not self.jwt_key:
            raise AuthenticationError("bearer tokens are not accepted: no JWT key is configured")
        try:
            claims = jwt.decode(
                token,
                self.jwt_key,
                algorithms=[self.jwt_algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from exc
        role = token_role(claims)
        if role is None:
            raise AuthenticationError(
                "the token names no pystator role: add a 'role' claim (viewer, operator, admin)"
            )
        return Principal(name=str(claims["sub"]), role=role, via="jwt")


def token_role(claims: dict[str, Any]) -> Role | None:
    """The highest role a token's ``role`` / ``roles`` claims name, if any."""
    named = claims.get("roles")
    names = list(named) if isinstance(named, list) else []
    if isinstance(claims.get("role"), str):
        names.append(claims["role"])
    roles = [Role(n) for n in names if n in {r.value for r in Role}]
    return max(roles, key=lambda r: r.rank) if roles else None


def jwt_verification_key(settings: Settings) -> tuple[str | None, str]:
    """The key JWTs are verified with and its algorithm (secret: HS256; public key: RS256)."""
    if settings.api_jwt_secret:
        return settings.api_jwt_secret, settings.api_jwt_algorithm or "HS256"
    public = settings.api_jwt_public_key
    if not public:
        return None, settings.api_jwt_algorithm or "HS256"
    if not public.lstrip().startswith("-----BEGIN"):
        try:
            public = Path(public).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(
                f"PYSTATOR_API_JWT_PUBLIC_KEY: cannot read {public!r} ({exc.strerror}); "
                "give the PEM text or the path of a PEM file"
            ) from exc
    return public, settings.api_jwt_algorithm or "RS256"


def mint_token(
    settings: Settings,
    *,
    subject: str,
    role: Role,
    ttl: timedelta,
    clock: Clock = utc_now,
) -> str:
    """A JWT signed with ``PYSTATOR_API_JWT_SECRET`` (what ``pystator token`` prints)."""
    if not settings.api_jwt_secret:
        raise SettingsError("PYSTATOR_API_JWT_SECRET is not set: there is no key to sign with")
    now = clock()
    claims: dict[str, Any] = {"sub": subject, "role": role.value, "iat": now, "exp": now + ttl}
    if settings.api_jwt_audience:
        claims["aud"] = settings.api_jwt_audience
    if settings.api_jwt_issuer:
        claims["iss"] = settings.api_jwt_issuer
    return jwt.encode(
        claims, settings.api_jwt_secret, algorithm=settings.api_jwt_algorithm or "HS256"
    )


def check_bind(host: str, auth: Authenticator) -> None:
    """Refuse to serve a non-loopback address without auth (:class:`SettingsError`)."""
    if is_loopback(host) or auth.configured():
        return
    raise SettingsError(
        f"refusing to serve on {host}: auth is not configured, and without it the API answers "
        "only on loopback. Set PYSTATOR_API_JWT_SECRET (or PYSTATOR_API_JWT_PUBLIC_KEY), or "
        "create a key with 'pystator api-keys create --role admin', or bind 127.0.0.1"
    )


__all__ = [
    "KEY_CACHE_SECONDS",
    "LOCAL_HOSTS",
    "LOCAL_PRINCIPAL",
    "PROXY_HEADERS",
    "Arrival",
    "Authenticator",
    "Principal",
    "check_bind",
    "host_name",
    "is_loopback",
    "jwt_verification_key",
    "mint_token",
    "token_role",
]
