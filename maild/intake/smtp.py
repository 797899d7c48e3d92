"""SMTP intake with aiosmtpd: accept mail for the support addresses only, spool it, then say 250.

RCPT TO is checked against the support addresses and their ``+tag`` forms (550 for anything else,
so the daemon is never an open relay). aiosmtpd answers 552 itself above ``data_size_limit``. DATA
is committed to the spool off the event loop before 250; a failed write answers 451 so the sender
keeps the message and retries. An unexpected exception answers 451 too, never a permanent 5xx.
Concurrent sessions share one spool commit (:mod:`maild.intake.group_commit`); each answers 250
only once the commit that holds its message is done.
"""

from __future__ import annotations

import asyncio
import logging
import typing
from collections.abc import Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from maild import spool
from maild.app import App
from maild.errors import SpoolError
from maild.intake.group_commit import SpoolWriter
from maild.pipeline.addresses import is_support_address

log = logging.getLogger("ticketd.smtp")


class IntakeHandler:
    """The aiosmtpd handler: recipient policy and the durable spool write."""

    def __init__(self, app: App, on_spooled: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.on_spooled = on_spooled
        self.connections = 0
        self.writer = SpoolWriter(app.db, source="smtp")

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # A reverse path longer than the spool keeps would get 451 at DATA on every retry;
        # refuse it now, permanently.
        if len(address) > spool.MAX_SENDER_CHARS:
            return "553 5.1.7 Sender address too long"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not is_support_address(address, self.app.config.support_addresses):
            return (
                "550 5.7.1 Relaying denied: this server only accepts mail for its support addresses"
            )
        if len(envelope.rcpt_tos) >= 100:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self.app.config.smtp_in.max_message_bytes:
            return "552 5.3.4 Message too big for this system"
        try:
            # MAIL FROM is mandatory in SMTP, so an empty reverse path is the null sender "<>".
            entry_id = await asyncio.wrap_future(
                self.writer.submit(raw, envelope.mail_from or "<>", list(envelope.rcpt_tos))
            )
        except SpoolError as exc:
            log.error("451 to %s: %s", session.peer, exc)
            return "451 4.3.0 Temporary failure storing the message; please retry"
        if self.on_spooled is not None:
            self.on_spooled(entry_id)
        return f"250 2.0.0 OK queued as {entry_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.exception("SMTP session error: %s", error)
        return "451 4.3.0 Temporary failure; please retry"


class IntakeSMTP(SMTP):
    """aiosmtpd's server with a cap on concurrent sessions."""

    # Real senders exceed 1000-byte lines; refusing them permanently would bounce real mail.
    line_length_limit = 1 << 16

    def __init__(self, handler: IntakeHandler, *, max_connections: int, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self._intake = handler
        self._max = max_connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._intake.connections += 1
        super().connection_made(transport)
        if self._intake.connections > self._max:
            # The event loop hands every SMTP connection a (write-capable) socket transport.
            typing.cast(asyncio.WriteTransport, transport).write(
                b"421 4.7.0 Too many connections, try again later\r\n"
            )
            transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        self._intake.connections -= 1
        super().connection_lost(error)


class IntakeController(Controller):
    """Runs the SMTP server in its own thread with its own event loop."""

    def __init__(self, app: App, on_spooled: Callable[[int], None] | None = None) -> None:
        cfg = app.config.smtp_in
        self.intake = IntakeHandler(app, on_spooled)
        super().__init__(
            self.intake,
            hostname=cfg.host,
            port=cfg.port,
            ready_timeout=10.0,
            server_hostname=cfg.hostname,
            data_size_limit=cfg.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=cfg.timeout_seconds,
        )

    def factory(self) -> SMTP:
        cfg = self.handler.app.config.smtp_in
        return IntakeSMTP(self.handler, max_connections=cfg.max_connections, **self.SMTP_kwargs)

    def start(self) -> None:
        self.intake.writer.start()
        super().start()

    def stop(self, *args, **kwargs) -> None:
        try:
            super().stop(*args, **kwargs)
        finally:
            self.intake.writer.stop()
