"""Delivering one outgoing message: to a folder of .eml files, or to an SMTP relay.

A transport returns :class:`Delivered` when the message was accepted (possibly with some recipients
deferred by a 4xx answer, to be tried again in a new outbox row), and raises
:class:`TemporaryFailure` (4xx answers, connection trouble: retry later) or
:class:`PermanentFailure` (5xx, or an envelope no relay can take: give up and record the answer).
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from maild.config import SmtpOutConfig, read_secret


class TemporaryFailure(Exception):
    """Try again later: a 4xx answer or a connection problem."""


class PermanentFailure(Exception):
    """Do not try again: a 5xx answer, recorded on the outbox row."""


@dataclass(frozen=True)
class Delivered:
    """The relay (or the folder) took the message."""

    detail: str
    deferred: tuple[str, ...] = ()  # recipients refused with 4xx: they need another try


class Transport(Protocol):
    """Sends one message; ``close`` ends a reused connection at the end of a pass."""

    def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes, name: str) -> Delivered: ...

    def close(self) -> None: ...


class FileTransport:
    """One ``.eml`` per message in a folder: for local use, tests and a mail-less start.

    The file is written under a temporary name, synced, then renamed, so a reader never sees half
    a message; ``name`` is unique per outbox row, so a re-delivery overwrites, never duplicates.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes, name: str) -> Delivered:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            final = self.directory / f"{name}.eml"
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    envelope = (
                        f"X-Envelope-From: <{mail_from}>\r\n"
                        f"X-Envelope-To: {', '.join(rcpt_tos)}\r\n"
                    )
                    fh.write(envelope.encode() + raw)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TemporaryFailure(f"cannot write {self.directory}: {exc}") from exc
        return Delivered(f"written to {final}")

    def close(self) -> None:
        pass


def _answer(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return f"{code} {text}"


class SmtpTransport:
    """An SMTP relay with STARTTLS or implicit TLS and optional AUTH; one connection per pass."""

    def __init__(self, config: SmtpOutConfig) -> None:
        self.config = config
        self.client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        context = ssl.create_default_context()
        if cfg.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
        try:
            client.ehlo()
            if cfg.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            password = read_secret(
                env=cfg.password_env, file=cfg.password_file, what="smtp_out.password"
            )
            if cfg.username and password:
                client.login(cfg.username, password)
        except BaseException:
            client.close()
            raise
        return client

    def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes, name: str) -> Delivered:
        try:
            if self.client is None:
                self.client = self._connect()
            refused = self.client.sendmail(mail_from, rcpt_tos, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            text = "; ".join(f"{r}: {_answer(c, m)}" for r, (c, m) in exc.recipients.items())
            if all(c >= 500 for c, _m in exc.recipients.values()):
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # A wrong password is fixed by the admin, not by giving up on the mail.
            self.close()
            text = _answer(exc.smtp_code, exc.smtp_error)
            raise TemporaryFailure(f"authentication: {text}") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            text = _answer(exc.smtp_code, exc.smtp_error)
            if exc.smtp_code >= 500:
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except (UnicodeEncodeError, smtplib.SMTPNotSupportedError) as exc:
            # A non-ASCII address without SMTPUTF8: no retry can fix that.
            self.close()
            raise PermanentFailure(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc
        where = f"{self.config.host}:{self.config.port}"
        if not refused:
            return Delivered(f"accepted by {where}")
        deferred = tuple(r for r, (c, _m) in refused.items() if c < 500)
        text = "; ".join(f"{r}: {_answer(c, m)}" for r, (c, m) in refused.items())
        return Delivered(f"accepted by {where} except {text}", deferred)

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None


def make_transport(config: SmtpOutConfig) -> Transport:
    """The transport ``smtp_out.transport`` names."""
    if config.transport == "file":
        return FileTransport(config.directory)
    return SmtpTransport(config)
