"""Refusing webhook destinations on private networks (server-side request forgery).

Unless a target has ``allow_private: true``, an address that is loopback, private (RFC 1918,
unique-local IPv6), link-local (169.254/16: cloud metadata), shared (100.64/10), multicast,
reserved or unspecified is refused: a literal one when the config is read, a name after DNS
resolution by :class:`GuardedResolver`, which the HTTP client connects through, so the address
that was checked is the one connected to. Redirects are never followed (maild.webhooks.sender).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

SHARED = ipaddress.ip_network("100.64.0.0/10")


class RefusedDestination(Exception):
    """The destination resolves only to addresses a webhook may not reach."""


def refused_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a webhook may not connect to ``ip``; None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if isinstance(ip, ipaddress.IPv6Address) and (ip.sixtofour or ip.teredo):
        # 6to4 (2002::/16) and Teredo carry an IPv4 address inside: judged by that one.
        inner = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None and refused_ip(inner) is not None:
            return f"an IPv6 address wrapping {inner}, {refused_ip(inner)}"
    if not ip.is_global:
        return "a non-global address"
    return None


def refused_address(host: str) -> str | None:
    """Why a literal host may not be reached (``localhost`` counts as loopback); None otherwise."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback address"
    try:
        ip = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return None  # a name: checked after resolution
    return refused_ip(ip)


def _resolver_base() -> type:
    from aiohttp.resolver import DefaultResolver

    return DefaultResolver


def make_resolver() -> Any:
    """An aiohttp resolver that drops refused addresses and fails when none is left."""

    class GuardedResolver(_resolver_base()):  # type: ignore[misc]
        async def resolve(
            self, host: str, port: int = 0, family: int = socket.AF_INET
        ) -> list[dict[str, Any]]:
            found = await super().resolve(host, port, family)
            kept, why = [], None
            for entry in found:
                reason = refused_ip(ipaddress.ip_address(entry["host"]))
                if reason is None:
                    kept.append(entry)
                else:
                    why = f"{host} resolves to {entry['host']}, {reason}"
            if not kept:
                raise RefusedDestination(why or f"{host} does not resolve")
            return kept

    return GuardedResolver()
