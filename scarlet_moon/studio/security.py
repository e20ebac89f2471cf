"""Who may talk to the studio: a token when it listens beyond loopback, the Host header (DNS rebinding)
and the Origin header of state-changing requests (cross-site requests).

The token, as notebook servers do it: printed in the URL (`?token=...`); the page's first request
with it sets an HttpOnly cookie, so later requests (scripts, fetches) carry it without the URL.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

COOKIE = "sm_studio_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _host_name(host_header: str) -> str:
    """`example.com:7860` -> `example.com`; `[::1]:7860` -> `::1`."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


class Guard:
    """ASGI middleware: 403 JSON {"error": ...} for a missing or wrong token, a foreign Host on a
    loopback server, or a cross-origin state-changing request."""

    def __init__(self, app: ASGIApp, token: str | None, host: str) -> None:
        self.app, self.token, self.bind = app, token, host

    async def __call__(
        self, scope: Scope, receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[Any]]
    ) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        why, set_cookie = self.check(scope, headers)
        if why:
            return await _forbid(send, why)
        if not set_cookie:
            return await self.app(scope, receive, send)

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))],
                }
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def check(self, scope: Scope, headers: dict[str, str]) -> tuple[str | None, bool]:
        """(why the request is refused or None, whether to set the token cookie)."""
        host = headers.get("host", "")
        if is_loopback(self.bind) and not is_loopback(_host_name(host)):
            return f"Host {host[:80]!r} is not this loopback server (DNS rebinding?)", False
        origin = headers.get("origin")
        if (
            scope["method"] not in SAFE_METHODS
            and origin is not None
            and origin not in (f"http://{host}", f"https://{host}")
        ):
            return f"cross-origin request from {origin[:80]!r} refused", False
        if self.token is None:
            return None, False
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        if given is not None:
            ok = hmac.compare_digest(given.encode(), self.token.encode())
            return (None, True) if ok else ("wrong token", False)
        cookie = SimpleCookie(headers.get("cookie", ""))
        sent = cookie[COOKIE].value if COOKIE in cookie else headers.get("x-studio-token")
        if sent is None:
            return "this studio needs its token: open the URL it printed (…/?token=…)", False
        return (None, False) if hmac.compare_digest(sent.encode(), self.token.encode()) else ("wrong token", False)


async def _forbid(send: Callable[..., Awaitable[Any]], why: str) -> None:
    body = json.dumps({"error": why}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
