"""The schema of ``imap.mailboxes`` entries in config.yaml: every key with its default, and the
validation that names the file, line and key of a mistake. Secrets are never inline.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from maild.config_schema import build_section, resolve_path, where_in_file
from maild.errors import ConfigError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_IDLE_RENEW_SECONDS = 540.0  # servers may drop an IDLE after 10 minutes (RFC 2177: 29)


# -- configuration ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OAuth2Config:
    """XOAUTH2 / OAUTHBEARER: the access token is read from a file or a command on every login."""

    token_file: Path | None = None
    token_command: str | None = None  # run without a shell; its first output line is the token
    mechanism: Literal["XOAUTH2", "OAUTHBEARER"] = "XOAUTH2"


@dataclasses.dataclass(frozen=True)
class MailboxConfig:
    """One entry of ``imap.mailboxes``: every key with its default."""

    name: str = ""  # names the mailbox in logs and in the stored state; renaming it reads all again
    host: str = ""
    port: int = 0  # 0: 993 with tls, else 143
    security: Literal["tls", "starttls", "none"] = "tls"  # none: loopback hosts only
    username: str = ""
    password_env: str | None = None  # the password from an environment variable ...
    password_file: Path | None = None  # ... or a file; or oauth2
    oauth2: OAuth2Config | None = None
    ca_file: Path | None = None  # trust this CA instead of the system's
    folders: tuple[str, ...] = ("INBOX",)
    after: str = "seen"  # seen | move:FOLDER | delete
    poll_seconds: float = 60.0  # the safety-net search, and the interval without IDLE
    idle: bool = True  # use IDLE when the server has it
    idle_renew_seconds: float = 540.0
    batch_size: int = 100  # messages per FETCH and per transaction ...
    batch_max_bytes: int = 33554432  # ... and at most this many bytes of them
    timeout_seconds: float = 60.0  # connect and read timeout
    retry_first_seconds: float = 5.0  # the first reconnect delay; doubles after each failure ...
    retry_max_seconds: float = 300.0  # ... up to this

    @property
    def after_action(self) -> Literal["seen", "move", "delete"]:
        return "move" if self.after.startswith("move:") else self.after  # type: ignore[return-value]

    @property
    def move_to(self) -> str | None:
        return self.after.partition(":")[2] if self.after.startswith("move:") else None


def parse_mailboxes(raw: Sequence[dict[str, Any]], source: Path) -> tuple[MailboxConfig, ...]:
    """Validate ``imap.mailboxes``; raises ConfigError naming the file and the key path."""
    mailboxes = tuple(
        _parse_mailbox(item, source, f"imap.mailboxes[{i}]") for i, item in enumerate(raw)
    )
    seen: set[str] = set()
    for i, mailbox in enumerate(mailboxes):
        if mailbox.name in seen:
            raise ConfigError(
                f"{where_in_file(raw[i], 'name', source)}: imap.mailboxes[{i}].name: "
                f"{mailbox.name!r} is used by another mailbox"
            )
        seen.add(mailbox.name)
    return mailboxes


def _parse_mailbox(item: Any, source: Path, keypath: str) -> MailboxConfig:
    if isinstance(item, dict):
        for key in ("name", "host", "username"):
            if key not in item:
                raise ConfigError(f"{where_in_file(item, key, source)}: {keypath}.{key}: required")
        if "password" in item:
            raise ConfigError(
                f"{where_in_file(item, 'password', source)}: {keypath}.password: secrets "
                "are never inline: use password_env (an environment variable's "
                "name) or password_file (a path)"
            )
    mailbox: MailboxConfig = build_section(MailboxConfig, item, path=source, keypath=keypath)
    mailbox = _resolved(mailbox, source.parent)

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where_in_file(item, key, source)}: {keypath}.{key}: {problem}")

    _validate(mailbox, fail)
    return mailbox


def _resolved(mailbox: MailboxConfig, base: Path) -> MailboxConfig:
    def res(path: Path | None) -> Path | None:
        return resolve_path(path, base)

    oauth2 = mailbox.oauth2
    if oauth2 is not None:
        oauth2 = dataclasses.replace(oauth2, token_file=res(oauth2.token_file))
    port = mailbox.port or (993 if mailbox.security == "tls" else 143)
    return dataclasses.replace(
        mailbox,
        port=port,
        oauth2=oauth2,
        ca_file=res(mailbox.ca_file),
        password_file=res(mailbox.password_file),
    )


def _validate(mb: MailboxConfig, fail: Callable[[str, str], ConfigError]) -> None:
    if not NAME_RE.match(mb.name):
        raise fail("name", f"{mb.name!r} must be letters, digits, '.', '_' or '-'")
    if not 1 <= mb.port <= 65535:
        raise fail("port", f"{mb.port} is not a TCP port")
    if mb.security == "none" and not is_loopback(mb.host):
        raise fail(
            "security",
            f"none (plain text) is allowed only for loopback hosts, not "
            f"{mb.host!r}: use tls or starttls",
        )
    credentials = [k for k in ("password_env", "password_file", "oauth2") if getattr(mb, k)]
    if len(credentials) != 1:
        raise fail(
            "password_env",
            "give exactly one of password_env, password_file or oauth2"
            + (f" (got {', '.join(credentials)})" if credentials else ""),
        )
    oauth2 = mb.oauth2
    if oauth2 is not None and (oauth2.token_file is None) == (oauth2.token_command is None):
        raise fail("oauth2", "give exactly one of token_file or token_command")
    if not mb.folders or len(set(mb.folders)) != len(mb.folders):
        raise fail("folders", "give at least one folder, each once")
    if mb.after not in ("seen", "delete") and not (mb.move_to and mb.move_to.strip()):
        raise fail("after", f"must be seen, delete or move:FOLDER, not {mb.after!r}")
    if mb.move_to in mb.folders:
        raise fail("after", f"cannot move to {mb.move_to!r}: it is a watched folder")
    positive = (
        "poll_seconds",
        "idle_renew_seconds",
        "batch_size",
        "batch_max_bytes",
        "timeout_seconds",
        "retry_first_seconds",
    )
    for key in positive:
        if getattr(mb, key) <= 0:
            raise fail(key, "must be greater than 0")
    if mb.idle_renew_seconds > MAX_IDLE_RENEW_SECONDS:
        raise fail(
            "idle_renew_seconds",
            f"at most {MAX_IDLE_RENEW_SECONDS:.0f} (servers drop an IDLE after 10 minutes)",
        )
    if mb.retry_max_seconds < mb.retry_first_seconds:
        raise fail("retry_max_seconds", "must not be less than retry_first_seconds")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
