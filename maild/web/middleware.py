"""What every HTTP answer goes through: client address, body cap, timeout, errors, headers.

- The client's address is the peer's, or, only when the peer is one of ``http.trusted_proxies``,
  the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy.
- A declared body over the cap is refused with 413 before it is read (aiohttp enforces the same
  cap while reading bodies without a length).
- A request that takes longer than ``http.request_timeout_seconds`` (reading the body included)
  gets 503.
- Errors never show a stack trace: an ``HTTPException`` becomes a small page, or JSON
  ``{"error": ...}`` for ``/api/`` paths and clients asking for JSON; anything else is logged and
  answered 500 with a generic text. A database that is locked or down answers 503 with
  Retry-After, so clients come back instead of losing what they sent.
- Security headers on every answer: a Content-Security-Policy without inline scripts and with
  ``frame-ancestors 'none'``, nosniff, a strict referrer policy, no caching of dynamic pages.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus

from aiohttp import web
from peewee import DatabaseError, InterfaceError, OperationalError

from maild.errors import SpoolError
from maild.web.pages import Pages

log = logging.getLogger("ticketd.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
RETRY_AFTER_SECONDS = 5
CLIENT_IP = web.RequestKey("ticketd.client_ip", str)  # a typed key: a str key warns (aiohttp 3.14)


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """``trusted_proxies`` entries (addresses or CIDR networks) as networks; ValueError if bad."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def forwarded_for(peer: str, header: str, trusted: Sequence[Network]) -> str:
    """The client's address: ``peer``, or the right-most untrusted X-Forwarded-For hop."""

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled header proves nothing
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer


def client_ip(request: web.Request) -> str:
    """The client's address as decided by the middleware."""
    return str(request.get(CLIENT_IP) or request.remote or "")


def wants_json(request: web.Request) -> bool:
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(
    request: web.Request, pages: Pages, status: int, message: str, headers: dict[str, str]
) -> web.Response:
    if wants_json(request):
        return web.json_response({"error": message}, status=status, headers=headers)
    reason = _reason(status)
    try:
        return pages.render(
            "error.html.j2",
            status=status,
            headers=headers,
            code=status,
            reason=reason,
            message=message,
        )
    except Exception:  # a broken admin template must not turn an error page into a traceback
        log.exception("cannot render error.html.j2")
        return web.Response(text=f"{status} {reason}\n", status=status, headers=headers)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# The texts shown for errors raised without one of our own messages.
_PLAIN = {
    400: "The request could not be understood.",
    403: "This link is not valid.",
    404: "There is no such page.",
    405: "This page does not accept that method.",
    413: "The request is too large.",
    415: "This content type is not accepted here.",
    429: "Too many requests: please try again later.",
    503: "The service is busy: please try again in a moment.",
}


def make_middlewares(
    pages: Pages, *, trusted: Sequence[Network], max_body: int, timeout: float
) -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    @web.middleware
    async def client_address(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        address = peer[0] if peer else (request.remote or "")
        request[CLIENT_IP] = forwarded_for(
            address, request.headers.get("X-Forwarded-For", ""), trusted
        )
        return await handler(request)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.content_length is not None and request.content_length > max_body:
                raise web.HTTPRequestEntityTooLarge(
                    max_size=max_body, actual_size=request.content_length
                )
            async with asyncio.timeout(timeout):
                return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = exc.text if exc.text and not _is_default_text(exc) else ""
            message = message or _PLAIN.get(exc.status, exc.reason)
            headers = {
                k: v
                for k, v in exc.headers.items()
                if k in ("Retry-After", "Allow", "WWW-Authenticate")
            }
            return error_response(request, pages, exc.status, message, headers)
        except (TimeoutError, SpoolError, OperationalError, InterfaceError, DatabaseError) as exc:
            log.warning("503 for %s %s: %s", request.method, request.path, exc)
            return error_response(
                request, pages, 503, _PLAIN[503], {"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("error answering %s %s", request.method, request.path)
            return error_response(
                request, pages, 500, "Something went wrong on our side. Please try again later.", {}
            )

    return [client_address, errors]


def _is_default_text(exc: web.HTTPException) -> bool:
    """aiohttp's own texts ("404: Not Found", size details) are replaced by ours."""
    text = exc.text or ""
    return text.startswith(f"{exc.status}:") or "Maximum request body size" in text


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the security headers, unless a handler set its own."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = "ticketd"
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
