"""One thread per mailbox: fetch new mail into the spool, then flag, move or delete it on
the server (the policy in the package docstring), with IDLE as a wake-up hint and backoff.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from imapclient import DELETED, SEEN, IMAPClient

from maild import spool
from maild.app import App
from maild.config_imap import MailboxConfig, parse_mailboxes
from maild.intake.imap.connect import ImapError, connect, describe
from maild.ops.heartbeat import beat
from maild.store.db import is_sqlite, write_tx
from maild.store.models import ImapState, SpoolEntry

log = logging.getLogger("ticketd.imap")

IDLE_CHECK_SECONDS = 1.0  # how often a thread in IDLE looks at its stop event


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
