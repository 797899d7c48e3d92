"""IMAP intake: read support mailboxes the way a careful mail client does.

Policy:

- Per mailbox and folder, :class:`~maild.store.models.ImapState` keeps the UIDVALIDITY seen and the
  highest UID spooled. New mail is ``UID SEARCH UID last+1:*`` filtered to UIDs above ``last`` (the
  server always returns the last message for ``*``), after a NOOP (Dovecot shows files a delivery
  agent dropped into a Maildir to a bare SEARCH only seconds later).
- Messages are fetched with ``BODY.PEEK[]`` (never implicitly ``\\Seen``) in batches bounded by
  count and by their ``RFC822.SIZE``; a batch's spool rows and its new last UID commit in one
  transaction, and only then is the ``after`` action (flag, move, delete) applied on the server. A
  crash between the two leaves a message spooled and untouched, never touched and lost.
- A message over ``smtp_in.max_message_bytes`` is not downloaded: its header is spooled as a
  quarantined row that says why, and the message stays on the server untouched for a person.
- A changed UIDVALIDITY resets the last UID to 0 and the folder is read again; the worker's
  Message-ID de-duplication keeps old mail from becoming new tickets.
- IDLE (where the server has it) is only a wake-up hint: it is renewed at least every
  ``idle_renew_seconds`` and every ``poll_seconds`` a full UID search runs anyway.
- One thread and one connection per mailbox. A failure logs one line, drops the connection and
  retries with exponential backoff; a broken mailbox never stops the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import re
import shlex
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import LoginError

from maild import spool
from maild.app import App
from maild.config import build_section, read_secret, resolve_path, where_in_file
from maild.errors import ConfigError, TicketdError
from maild.ops.heartbeat import beat
from maild.store.db import is_sqlite, write_tx
from maild.store.models import ImapState, SpoolEntry

log = logging.getLogger("ticketd.imap")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
IDLE_CHECK_SECONDS = 1.0  # how often a thread in IDLE looks at its stop event
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


# -- polling ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Fetched:
    uid: int
    raw: bytes
    error: str | None = None  # set: spool it quarantined (too large)


class MailboxPoller:
    """Reads one mailbox with its own connection; ``run`` is the thread, ``sync_once`` one pass."""

    def __init__(
        self, app: App, mailbox: MailboxConfig, on_spooled: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.mailbox = mailbox
        self.on_spooled = on_spooled
        self.client: IMAPClient | None = None
        self.failures = 0  # consecutive failed passes
        self.idling = threading.Event()  # set while waiting in IDLE (for status and tests)
        # Per folder: (uidvalidity, spooled UIDs whose after action failed), retried next pass.
        self._unapplied: dict[str, tuple[int, list[int]]] = {}

    # -- one pass -------------------------------------------------------------------------

    def sync_once(self) -> int:
        """Connect if needed and spool what is new in every folder; return how many were spooled.

        The first folder is read last, so it is the one still selected for IDLE.
        """
        folders = self.mailbox.folders
        try:
            client = self._connected()
            return sum(self._sync_folder(client, folder) for folder in (*folders[1:], folders[0]))
        except BaseException:
            self.close(graceful=False)
            raise

    def _connected(self) -> IMAPClient:
        if self.client is None:
            client = connect(self.mailbox)
            self.client = client
            target = self.mailbox.move_to
            if target and not client.folder_exists(target):
                client.create_folder(target)
                log.info("imap %s: created folder %s for after: move", self.mailbox.name, target)
        return self.client

    def _sync_folder(self, client: IMAPClient, folder: str) -> int:
        selected = client.select_folder(folder)
        if b"UIDVALIDITY" not in selected:
            raise ImapError(f"{folder}: the server gave no UIDVALIDITY")
        uidvalidity = int(selected[b"UIDVALIDITY"])
        last_uid = self._last_uid(folder, uidvalidity)
        self._retry_after(client, folder, uidvalidity)
        spooled = 0
        while True:
            client.noop()
            uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
            if not uids:
                return spooled
            for group in self._groups(client, uids):
                spooled += self._take(client, folder, uidvalidity, group)
            last_uid = uids[-1]

    def _last_uid(self, folder: str, uidvalidity: int) -> int:
        """The stored last UID; a new folder starts at 0, and so does a changed UIDVALIDITY."""
        name = self.mailbox.name
        with write_tx(self.app.db):
            state = _state(name, folder)
            if state is None:
                ImapState.create(
                    mailbox=name,
                    folder=folder,
                    uidvalidity=uidvalidity,
                    last_uid=0,
                    updated_at=self.app.clock.now(),
                )
                return 0
            if state.uidvalidity == uidvalidity:
                return state.last_uid
            log.warning(
                "imap %s: %s: UIDVALIDITY changed from %s to %s; reading the folder again "
                "(Message-ID de-duplication keeps old mail out of new tickets)",
                name,
                folder,
                state.uidvalidity,
                uidvalidity,
            )
            ImapState.update(
                uidvalidity=uidvalidity, last_uid=0, updated_at=self.app.clock.now()
            ).where(ImapState.id == state.id).execute()
            self._unapplied.pop(folder, None)
            return 0

    def _groups(self, client: IMAPClient, uids: list[int]) -> Iterator[dict[int, int | None]]:
        """UIDs with their RFC822.SIZE (None: gone), in groups of batch_size and batch_max_bytes."""
        mb = self.mailbox
        limit = self.app.config.smtp_in.max_message_bytes
        for start in range(0, len(uids), mb.batch_size):
            chunk = uids[start : start + mb.batch_size]
            data = client.fetch(chunk, ["RFC822.SIZE"])
            group: dict[int, int | None] = {}
            total = 0
            for uid in chunk:
                size = data.get(uid, {}).get(b"RFC822.SIZE")
                counted = size if isinstance(size, int) and size <= limit else 0
                if group and total + counted > mb.batch_max_bytes:
                    yield group
                    group, total = {}, 0
                group[uid] = size if isinstance(size, int) else None
                total += counted
            if group:
                yield group

    def _take(
        self, client: IMAPClient, folder: str, uidvalidity: int, group: dict[int, int | None]
    ) -> int:
        """Download one group, spool it with its last UID in one transaction, then apply after."""
        limit = self.app.config.smtp_in.max_message_bytes
        small = [u for u, size in group.items() if size is not None and size <= limit]
        large = [u for u, size in group.items() if size is not None and size > limit]
        bodies = _fetch(client, small, "BODY.PEEK[]", b"BODY[]")
        heads = _fetch(client, large, "BODY.PEEK[HEADER]", b"BODY[HEADER]")
        fetched = []
        for uid, size in group.items():
            if uid in bodies:
                fetched.append(_Fetched(uid, bodies[uid]))
            elif uid in heads:
                error = self._too_large(folder, uid, size or 0, limit)
                fetched.append(_Fetched(uid, heads[uid], error))
            else:
                log.warning(
                    "imap %s: %s: UID %s vanished before it could be fetched",
                    self.mailbox.name,
                    folder,
                    uid,
                )
        spooled = self._commit(folder, uidvalidity, fetched, last_uid=max(group))
        if spooled and self.on_spooled is not None:
            self.on_spooled()
        done = [f.uid for f in fetched if f.error is None and f.uid in spooled]
        self._after(client, folder, uidvalidity, done)
        return len(spooled)

    def _too_large(self, folder: str, uid: int, size: int, limit: int) -> str:
        log.warning(
            "imap %s: %s: UID %s has %s bytes, over smtp_in.max_message_bytes (%s); "
            "quarantined, left on the server",
            self.mailbox.name,
            folder,
            uid,
            size,
            limit,
        )
        return (
            f"too large: {size} bytes, over smtp_in.max_message_bytes ({limit}); not "
            f"downloaded (only its header is kept) and left on the IMAP server in "
            f"{self.mailbox.name} {folder}, UID {uid}"
        )

    def _commit(
        self, folder: str, uidvalidity: int, fetched: list[_Fetched], last_uid: int
    ) -> set[int]:
        """Spool ``fetched`` and move the last UID on, in one transaction; the UIDs spooled.

        The state row is read again inside the transaction (locked on PostgreSQL), so a UID that
        another instance spooled meanwhile is not spooled twice.
        """
        db = self.app.db
        now = self.app.clock.now()
        with write_tx(db):
            state = _state(self.mailbox.name, folder, lock=not is_sqlite(db))
            if state is None or state.uidvalidity != uidvalidity:
                raise ImapError(f"{folder}: its stored state changed during the fetch")
            spooled = set()
            for item in fetched:
                if item.uid <= state.last_uid:
                    continue
                ref = f"{self.mailbox.name}/{folder}/{uidvalidity}/{item.uid}"
                entry_id = spool.add(item.raw, source="imap", source_ref=ref, now=now)
                if item.error is not None:
                    SpoolEntry.update(status=spool.QUARANTINED, last_error=item.error).where(
                        SpoolEntry.id == entry_id
                    ).execute()
                spooled.add(item.uid)
            ImapState.update(last_uid=max(state.last_uid, last_uid), updated_at=now).where(
                ImapState.id == state.id
            ).execute()
        return spooled

    # -- after spooling -------------------------------------------------------------------

    def _after(self, client: IMAPClient, folder: str, uidvalidity: int, uids: list[int]) -> None:
        """Flag, move or delete spooled messages; on failure remember them for the next pass."""
        if not uids:
            return
        try:
            self._apply_after(client, uids)
        except BaseException:
            self._unapplied.setdefault(folder, (uidvalidity, []))[1].extend(uids)
            raise

    def _retry_after(self, client: IMAPClient, folder: str, uidvalidity: int) -> None:
        pending = self._unapplied.pop(folder, None)
        if pending is not None and pending[0] == uidvalidity:
            self._after(client, folder, uidvalidity, pending[1])

    def _apply_after(self, client: IMAPClient, uids: list[int]) -> None:
        action = self.mailbox.after_action
        if action == "seen":
            client.add_flags(uids, [SEEN], silent=True)
        elif action == "move" and client.has_capability("MOVE"):
            client.move(uids, self.mailbox.move_to)
        else:
            if action == "move":
                client.copy(uids, self.mailbox.move_to)
            client.add_flags(uids, [DELETED], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uids)
            else:
                # A plain EXPUNGE would also remove what other clients flagged \Deleted.
                log.warning(
                    "imap %s: the server has no UIDPLUS: %s message(s) stay flagged "
                    "\\Deleted until a mail client expunges them",
                    self.mailbox.name,
                    len(uids),
                )

    # -- the thread -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Sync and wait for news until ``stop`` is set; log failures and retry, never raise."""
        opened = False
        try:
            opened = self.app.db.connect(reuse_if_open=True)
        except Exception as exc:  # the first query connects again (peewee's autoconnect)
            log.warning("imap %s: database: %s", self.mailbox.name, describe(exc))
        try:
            while not stop.is_set():
                try:
                    self.sync_once()
                    self._beat(ok=True)
                    if self.failures:
                        log.info(
                            "imap %s: working again after %s failure(s)",
                            self.mailbox.name,
                            self.failures,
                        )
                        self.failures = 0
                    self._wait(stop)
                except Exception as exc:
                    self._beat(ok=False, detail=describe(exc))
                    stop.wait(self._failed(exc))
        finally:
            self.close()
            if opened:
                self.app.db.close()

    def _beat(self, *, ok: bool, detail: str = "") -> None:
        """The mailbox's heartbeat for ``ticketd status``: its last (successful) poll."""
        beat(
            self.app.db,
            f"imap:{self.mailbox.name}",
            kind="imap",
            now=self.app.clock.now(),
            stale_seconds=max(self.mailbox.poll_seconds * 3, 60),
            ok=ok,
            detail=detail,
        )

    def _failed(self, exc: Exception) -> float:
        """Log one line, drop the connection; return the delay before the next attempt."""
        self.failures += 1
        mb = self.mailbox
        delay = backoff_delay(self.failures, mb.retry_first_seconds, mb.retry_max_seconds)
        log.warning(
            "imap %s: %s; retrying in %g s (failure %s)",
            mb.name,
            describe(exc),
            delay,
            self.failures,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        self.close(graceful=False)
        return delay

    def _wait(self, stop: threading.Event) -> None:
        """Wait in IDLE until the server reports new mail, or for ``poll_seconds``."""
        mb = self.mailbox
        client = self.client
        if client is None or not (mb.idle and client.has_capability("IDLE")):
            stop.wait(mb.poll_seconds)
            return
        deadline = time.monotonic() + min(mb.poll_seconds, mb.idle_renew_seconds)
        client.idle()
        self.idling.set()
        try:
            _idle_until_news(client, stop, deadline)
        finally:
            self.idling.clear()
            client.idle_done()

    def close(self, *, graceful: bool = True) -> None:
        """Log out (or just drop the connection after a failure)."""
        client, self.client = self.client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            if graceful:
                client.logout()
            else:
                client.shutdown()


def _idle_until_news(client: IMAPClient, stop: threading.Event, deadline: float) -> None:
    """Return on news, on ``stop``, at ``deadline``, or when the connection looks broken.

    Checks are short so that ``stop`` is noticed within a second. A reply already sitting in
    imaplib's read buffer is invisible to ``idle_check`` (which polls the socket): Dovecot sends
    changes made just before IDLE together with its ``+ idling``. A socket that is readable but
    yields no line means EOF or a reply split across packets (imapclient bug #519): both end the
    IDLE, and its DONE shows whether the connection still works.
    """
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or _buffered(client):
            return
        step = min(IDLE_CHECK_SECONDS, remaining)
        started = time.monotonic()
        responses = client.idle_check(timeout=step)
        if any(_is_news(r) for r in responses):
            return
        if not responses and time.monotonic() - started < step / 2:
            return


def _is_news(response: tuple[Any, ...]) -> bool:
    return (len(response) >= 2 and response[1] == b"EXISTS") or response[:1] == (b"BYE",)


def _buffered(client: IMAPClient) -> bool:
    """Whether imaplib has already read server data that the socket poll cannot see."""
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, AttributeError, ValueError):
        return False
    finally:
        sock.settimeout(timeout)


def _state(mailbox: str, folder: str, *, lock: bool = False) -> ImapState | None:
    query = ImapState.select().where((ImapState.mailbox == mailbox) & (ImapState.folder == folder))
    if lock:
        query = query.for_update()
    return query.first()


def _fetch(client: IMAPClient, uids: list[int], item: str, key: bytes) -> dict[int, bytes]:
    """``item`` of each UID; a UID the server did not answer for (expunged) is left out."""
    if not uids:
        return {}
    data = client.fetch(uids, [item])
    found = {uid: data.get(uid, {}).get(key) for uid in uids}
    return {uid: value for uid, value in found.items() if isinstance(value, bytes)}


def backoff_delay(failures: int, first: float, cap: float) -> float:
    """``first`` after the first failure, doubling after each one, at most ``cap``."""
    return min(cap, first * 2 ** min(max(failures - 1, 0), 30))


def start_imap_threads(
    app: App, stop: threading.Event, on_spooled: Callable[[], None]
) -> list[threading.Thread]:
    """One daemon thread per configured mailbox, each with its own connection and DB handle."""
    threads = []
    for mailbox in parse_mailboxes(app.config.imap.mailboxes, app.config.source):
        poller = MailboxPoller(app, mailbox, on_spooled=on_spooled)
        thread = threading.Thread(
            target=poller.run, args=(stop,), name=f"imap-{mailbox.name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


# -- ticketd imap check -------------------------------------------------------------------------


def check(app: App, out: TextIO, err: TextIO | None = None) -> int:
    """Log in to each mailbox and report on it; 1 when any mailbox fails (its reason on ``err``)."""
    err = err or sys.stderr
    mailboxes = parse_mailboxes(app.config.imap.mailboxes, app.config.source)
    if not mailboxes:
        print("no IMAP mailboxes are configured (imap.mailboxes is empty)", file=err)
        return 1
    failed = 0
    for mb in mailboxes:
        try:
            lines = _check_mailbox_live(mb)
        except (TicketdError, OSError, IMAPClient.Error) as exc:
            print(f"{mb.name}: FAILED: {describe(exc)}", file=err)
            failed += 1
            continue
        print("\n".join(lines), file=out)
    return 1 if failed else 0


def _check_mailbox_live(mb: MailboxConfig) -> list[str]:
    client = connect(mb)
    try:
        caps = client.capabilities()
        folders = sorted(str(name) for _flags, _delimiter, name in client.list_folders())
        flags = ", ".join(
            f"{c} {'yes' if c.encode() in caps else 'no'}" for c in ("IDLE", "MOVE", "UIDPLUS")
        )
        lines = [
            f"{mb.name}: OK, {mb.username} at {mb.host}:{mb.port} ({mb.security})",
            f"  capabilities: {flags}",
            f"  folders: {', '.join(folders)}",
        ]
        for folder in mb.folders:
            if folder not in folders:
                raise ImapError(
                    f"the watched folder {folder!r} does not exist (folders: {', '.join(folders)})"
                )
            lines.append(f"  {folder}: {_folder_report(client, mb.name, folder)}")
        if mb.move_to:
            exists = "exists" if mb.move_to in folders else "will be created"
            lines.append(f"  after: move to {mb.move_to} ({exists})")
        else:
            lines.append(f"  after: {mb.after}")
        return lines
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _folder_report(client: IMAPClient, mailbox: str, folder: str) -> str:
    status = client.folder_status(folder, ["MESSAGES", "UNSEEN", "UIDVALIDITY"])
    uidvalidity = status.get(b"UIDVALIDITY")
    state = _state(mailbox, folder)
    if state is None:
        progress = "not read yet"
    elif state.uidvalidity != uidvalidity:
        progress = "UIDVALIDITY changed: will be read again"
    else:
        progress = f"spooled up to UID {state.last_uid}"
    return (
        f"messages {status.get(b'MESSAGES')}, unseen {status.get(b'UNSEEN')}, "
        f"UIDVALIDITY {uidvalidity}, {progress}"
    )
