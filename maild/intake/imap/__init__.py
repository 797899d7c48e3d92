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

from maild.config_imap import MailboxConfig, OAuth2Config, is_loopback, parse_mailboxes
from maild.intake.imap.check import check
from maild.intake.imap.connect import ImapError, connect, describe
from maild.intake.imap.poller import MailboxPoller, backoff_delay, start_imap_threads

__all__ = [
    "ImapError",
    "MailboxConfig",
    "MailboxPoller",
    "OAuth2Config",
    "backoff_delay",
    "check",
    "connect",
    "describe",
    "is_loopback",
    "parse_mailboxes",
    "start_imap_threads",
]
