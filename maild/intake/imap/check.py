"""``ticketd imap check``: log in to each mailbox and report its folders, capabilities and
counts, without changing anything.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TextIO

from imapclient import IMAPClient

from maild.app import App
from maild.config_imap import MailboxConfig, parse_mailboxes
from maild.errors import TicketdError
from maild.intake.imap.connect import ImapError, connect, describe
from maild.intake.imap.poller import _state

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
