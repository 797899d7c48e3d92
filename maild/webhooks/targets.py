"""The places deliveries go: ``webhooks:`` entries and the HTTP channels that get answers back.

A hook is ``{name, url, events, secret_env | secret_file, format, allow_private, include_notes,
timeout_seconds, max_attempts}``. The secret is a Standard Webhooks secret (``whsec_`` and
base64); a hook of ``format: json`` must have one, and a secret that is named but missing (an
unset variable, an unreadable file) is a config error naming the key, so ``ticketd run`` exits
78 before anything starts. A URL whose host is a literal private, loopback or link-local
address is refused here unless ``allow_private: true``; names are checked after DNS resolution
when delivering (maild.webhooks.guard).
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maild.config import Config, read_secret
from maild.config_schema import resolve_path
from maild.errors import ConfigError

EVENTS = (
    "ticket.created",
    "ticket.updated",
    "message.created",
    "sla.warning",
    "sla.breached",
    "satisfaction.received",
)
HOOK_KEYS = frozenset(
    {
        "name",
        "url",
        "events",
        "secret_env",
        "secret_file",
        "format",
        "allow_private",
        "include_notes",
        "timeout_seconds",
        "max_attempts",
    }
)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Target:
    """Where one kind of delivery goes, and how it is signed and retried."""

    key: str  # hook:NAME | slack:CHANNEL | reply:CHANNEL (WebhookDelivery.target)
    url: str
    secret: str | None  # a whsec_ secret; None: unsigned (slack format, Slack's API)
    events: frozenset[str] = frozenset(EVENTS)
    format: str = "json"  # json | slack
    allow_private: bool = False
    include_notes: bool = False
    timeout_seconds: float = 10.0
    max_attempts: int = 12
    bot_token: str | None = None  # slack:… targets: the bot token for chat.postMessage


def check_secret(value: str, key: str) -> str:
    """A Standard Webhooks secret (``whsec_`` + base64 of at least 16 bytes), or ConfigError."""
    raw = value.removeprefix("whsec_")
    try:
        decoded = base64.b64decode(raw + "==", validate=False)
    except (binascii.Error, ValueError):
        decoded = b""
    if not value.startswith("whsec_") or len(decoded) < 16:
        raise ConfigError(
            f"{key}: not a Standard Webhooks secret (whsec_ followed by the base64 of at least "
            "16 random bytes)"
        )
    return value


def check_url(url: Any, key: str, *, allow_private: bool) -> str:
    """An http(s) URL; a literal private address is refused unless allowed."""
    from maild.webhooks.guard import refused_address

    if not isinstance(url, str):
        raise ConfigError(f"{key}: an http(s) URL is required")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: {url!r} is not an http(s) URL")
    if not allow_private:
        why = refused_address(parts.hostname)
        if why:
            raise ConfigError(f"{key}: {parts.hostname} is {why} (set allow_private: true)")
    return url


def _secret(entry: dict[str, Any], key: str, base: Path, *, required: bool) -> str | None:
    env, file = entry.get("secret_env"), entry.get("secret_file")
    if env and file:
        raise ConfigError(f"{key}: give secret_env or secret_file, not both")
    if not env and not file:
        if required:
            raise ConfigError(f"{key}: give secret_env or secret_file (the signing secret)")
        return None
    path = resolve_path(Path(str(file)), base) if file else None
    which = f"{key}.secret_env" if env else f"{key}.secret_file"
    value = read_secret(env=str(env) if env else None, file=path, what=which)
    if not value:
        raise ConfigError(f"{which}: the secret is empty")
    return check_secret(value, which)


def load_hooks(config: Config) -> tuple[Target, ...]:
    """The ``webhooks:`` entries as targets; ConfigError names the bad key."""
    hooks: list[Target] = []
    for i, entry in enumerate(config.webhooks):
        key = f"webhooks[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{key}: expected a mapping")
        unknown = set(entry) - HOOK_KEYS
        if unknown:
            known = ", ".join(sorted(HOOK_KEYS))
            raise ConfigError(f"{key}: unknown key {sorted(unknown)[0]} (known: {known})")
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(f"{key}.name: give a name of lower-case letters, digits, - and _")
        if any(h.key == f"hook:{name}" for h in hooks):
            raise ConfigError(f"{key}.name: {name!r} is used twice")
        fmt = entry.get("format", "json")
        if fmt not in ("json", "slack"):
            raise ConfigError(f"{key}.format: must be json or slack, not {fmt!r}")
        allow = entry.get("allow_private", False)
        notes = entry.get("include_notes", False)
        for flag, value in (("allow_private", allow), ("include_notes", notes)):
            if not isinstance(value, bool):
                raise ConfigError(f"{key}.{flag}: expected true or false")
        events = entry.get("events", list(EVENTS))
        if not isinstance(events, list) or not events:
            raise ConfigError(f"{key}.events: a list of events is required")
        for j, event in enumerate(events):
            if event not in EVENTS:
                raise ConfigError(f"{key}.events[{j}]: {event!r} is not one of {', '.join(EVENTS)}")
        timeout = entry.get("timeout_seconds", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ConfigError(f"{key}.timeout_seconds: expected a number")
        if not 0.1 <= timeout <= 120:
            raise ConfigError(f"{key}.timeout_seconds: must be 0.1 to 120 seconds")
        attempts = entry.get("max_attempts", 12)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
            raise ConfigError(f"{key}.max_attempts: a whole number from 1 to 100")
        url = check_url(entry.get("url"), f"{key}.url", allow_private=allow)
        secret = _secret(entry, key, config.base_dir, required=fmt == "json")
        hooks.append(
            Target(
                key=f"hook:{name}",
                url=url,
                secret=secret,
                events=frozenset(events),
                format=fmt,
                allow_private=allow,
                include_notes=notes,
                timeout_seconds=float(timeout),
                max_attempts=attempts,
            )
        )
    return tuple(hooks)
