"""A capturing SMTP relay on a loopback port, for the outbox's tests.

It is a real aiosmtpd server. It records every message it accepts (envelope and bytes), and can be
told to answer the next N messages with a 4xx or 5xx (at RCPT or at DATA), or to hold the next N
messages in DATA until released, which lets a test kill the sender in the middle of a delivery.
It can be started on a port chosen in advance, so a test can configure the daemon for a relay that
is not there yet and start it later. Waiting is on a condition, never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import email
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers.daemon import free_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One message the relay accepted with 250."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes = field(repr=False)

    @property
    def message(self) -> EmailMessage:
        """The message parsed the way a receiving client would (stdlib, policy.default)."""
        return cast(EmailMessage, email.message_from_bytes(self.raw, policy=policy.default))

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"]).strip().strip("<>")


@dataclass
class _Failure:
    code: int
    text: str
    stage: str  # "RCPT" or "DATA"


class _Handler:
    """The aiosmtpd handler behind :class:`Relay`; all state lives on the relay."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        failure = self.relay._next_failure("RCPT")
        if failure is not None:
            return f"{failure.code} {failure.text}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        relay = self.relay
        failure = relay._next_failure("DATA")
        if failure is not None:
            return f"{failure.code} {failure.text}"
        release = relay._next_stall()
        if release is not None:
            relay.stalled.set()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, release.wait, relay.stall_timeout)
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=envelope.original_content or b"",
        )
        relay._record(received)
        return "250 2.0.0 OK: queued"


class Relay:
    """A capturing relay: ``with Relay() as relay: ...`` or ``start()``/``stop()``."""

    def __init__(self, port: int | None = None, *, stall_timeout: float = 60.0) -> None:
        self.port = port or free_port()
        self.stall_timeout = stall_timeout
        self.messages: list[Received] = []
        self.stalled = threading.Event()  # set while a DATA is being held
        self._failures: list[_Failure] = []
        self._stalls: list[threading.Event] = []
        self._held: list[threading.Event] = []
        self._changed = threading.Condition()
        self._controller: Controller | None = None

    # -- control ------------------------------------------------------------------------------

    def start(self) -> Relay:
        """Listen on the port; returns once the server answers its greeting."""
        self._controller = Controller(
            _Handler(self),
            hostname=HOST,
            port=self.port,
            server_hostname="relay.test",
            ready_timeout=10.0,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        """Release held messages and stop listening."""
        with self._changed:
            for event in (*self._stalls, *self._held):
                event.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def fail_next(
        self, count: int = 1, code: int = 451, text: str | None = None, *, stage: str = "DATA"
    ) -> None:
        """Answer the next ``count`` messages with ``code`` (at RCPT or at DATA)."""
        if text is None:
            text = "4.3.0 Try again later" if code < 500 else "5.1.1 No such user here"
        with self._changed:
            self._failures.extend(_Failure(code, text, stage) for _ in range(count))

    def stall_next(self, count: int = 1) -> None:
        """Hold the next ``count`` messages in DATA (before 250) until :meth:`release`."""
        with self._changed:
            self._stalls.extend(threading.Event() for _ in range(count))

    def release(self) -> None:
        """Let every held message finish."""
        with self._changed:
            for event in self._held:
                event.set()
            self._held.clear()
        self.stalled.clear()

    # -- observation --------------------------------------------------------------------------

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Block until at least ``count`` messages were accepted; return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"relay on port {self.port}: {len(self.messages)} of {count} messages"
                    )
                self._changed.wait(left)
            return list(self.messages)

    def message_ids(self) -> list[str]:
        with self._changed:
            return [m.message_id for m in self.messages]

    # -- used by the handler (event-loop thread) ---------------------------------------------

    def _next_failure(self, stage: str) -> _Failure | None:
        with self._changed:
            for i, failure in enumerate(self._failures):
                if failure.stage == stage:
                    return self._failures.pop(i)
            return None

    def _next_stall(self) -> threading.Event | None:
        with self._changed:
            if not self._stalls:
                return None
            event = self._stalls.pop(0)
            self._held.append(event)
            return event

    def _record(self, received: Received) -> None:
        with self._changed:
            self.messages.append(received)
            self._changed.notify_all()


__all__ = ["HOST", "Received", "Relay"]
