"""Who may talk to a local HTTP server of `smart`: the token and the Host header.

Small functions with no state, for any server of this package (``smart serve`` uses them in
:mod:`smartcli.cli.web`): a request is let in when it carries the server's token (``?token=``,
``Authorization: Bearer``, or a ``smart_token*`` cookie the server set) and, on loopback, names a
loopback host (no DNS rebinding). Header names are expected in lower case.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

TOKEN_COOKIE = "smart_token"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def new_token() -> str:
    """A fresh random token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    return host.strip("[]").lower() in LOOPBACK


def offered_tokens(headers: Mapping[str, str], params: Mapping[str, list[str]]) -> list[str]:
    """Every token a request offers: ``?token=``, a Bearer token, and ``smart_token*`` cookies."""
    offered = list(params.get("token", []))
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        offered.append(auth[7:].strip())
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE or name.startswith(TOKEN_COOKIE + "_"):
            offered.append(value)
    return offered


def token_accepted(expected: str | None, headers: Mapping[str, str], params: Mapping[str, list[str]]) -> bool:
    """Whether the request carries ``expected`` (compared in constant time); None lets everyone in."""
    if expected is None:
        return True
    want = expected.encode()
    return any(hmac.compare_digest(offer.encode("utf-8", "replace"), want) for offer in offered_tokens(headers, params))


def host_accepted(allowed: frozenset[str] | set[str] | None, headers: Mapping[str, str]) -> bool:
    """Whether the Host header names one of ``allowed`` (None: any host)."""
    return allowed is None or host_name(headers.get("host", "")) in allowed


def host_name(host: str) -> str:
    """The name part of a Host header, lower case, without its port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def token_cookie(token: str, port: int | None) -> str:
    """The Set-Cookie value that carries ``token`` for later requests to this server (a name per
    port: a browser sends a host's cookies to all its ports, and two servers must not overwrite
    each other's)."""
    name = TOKEN_COOKIE if port is None else f"{TOKEN_COOKIE}_{port}"
    return f"{name}={token}; HttpOnly; SameSite=Strict; Path=/"
