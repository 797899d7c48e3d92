"""Connecting to a mailbox: TLS or STARTTLS (plain text only on loopback), login with a
password or an OAuth2 token read on every login, and errors described in one line.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import ssl
import subprocess

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from maild.config import read_secret
from maild.config_imap import MailboxConfig
from maild.errors import TicketdError

# -- connecting ---------------------------------------------------------------------------------


class ImapError(TicketdError):
    """A mailbox cannot be used: the message says which and why."""


def connect(mb: MailboxConfig) -> IMAPClient:
    """A logged-in client for ``mb``; credentials are read afresh (tokens expire)."""
    context = None
    if mb.security != "none":
        context = ssl.create_default_context(cafile=str(mb.ca_file) if mb.ca_file else None)
    try:
        client = IMAPClient(
            mb.host,
            port=mb.port,
            ssl=mb.security == "tls",
            ssl_context=context,
            timeout=mb.timeout_seconds,
        )
    except (OSError, ssl.SSLError) as exc:
        raise ImapError(f"cannot connect to {mb.host}:{mb.port}: {exc.strerror or exc}") from exc
    try:
        if mb.security == "starttls":
            client.starttls(context)
        _login(client, mb)
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def _login(client: IMAPClient, mb: MailboxConfig) -> None:
    try:
        if mb.oauth2 is None:
            password = read_secret(env=mb.password_env, file=mb.password_file, what="password")
            client.login(mb.username, password or "")
        elif mb.oauth2.mechanism == "OAUTHBEARER":
            client.oauthbearer_login(mb.username, _oauth2_token(mb))
        else:
            client.oauth2_login(mb.username, _oauth2_token(mb))
    except LoginError as exc:
        raise ImapError(
            f"login as {mb.username} at {mb.host}:{mb.port} refused: {_text(exc)}"
        ) from exc


def _oauth2_token(mb: MailboxConfig) -> str:
    oauth2 = mb.oauth2
    assert oauth2 is not None
    if oauth2.token_file is not None:
        token = read_secret(env=None, file=oauth2.token_file, what="oauth2.token_file")
        if not token:
            raise ImapError(f"oauth2.token_file {oauth2.token_file} is empty")
        return token.splitlines()[0]
    command = shlex.split(oauth2.token_command or "")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImapError(f"oauth2.token_command {command[0]!r} failed: {exc}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        why = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise ImapError(f"oauth2.token_command gave no token: {why[0]}")
    return lines[0].strip()


def describe(exc: BaseException) -> str:
    """One line for the log: our own errors as they are, others with their type."""
    if isinstance(exc, TicketdError):
        return str(exc)
    return f"{type(exc).__name__}: {_text(exc)}"


def _text(exc: BaseException) -> str:
    """imapclient puts server replies in errors as ``b'...'`` reprs; show the text."""
    text = str(exc)
    match = re.fullmatch(r"b(['\"])(.*)\1", text)
    return match.group(2) if match else text
