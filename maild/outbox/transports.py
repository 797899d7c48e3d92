"""Delivering one outgoing message: to a folder of .eml files, or to an SMTP relay.

A transport raises :class:`TemporaryFailure` (4xx answers, connection trouble: retry later) or
:class:`PermanentFailure` (5xx: give up and record the answer).
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from pathlib import Path
from typing import Protocol

from maild.config import SmtpOutConfig, read_secret


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


class Transport(Protocol):
    def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes, name: str) -> str: ...

    def close(self) -> None: ...


class FileTransport:
    """One ``.eml`` per message in a folder: for local use, tests and a mail-less start."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes, name: str) -> str:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            final = self.directory / f"{name}.eml"
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                envelope = (
                    f"X-Envelope-From: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n"
                )
                fh.write(envelope.encode() + raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write {self.directory}: {exc}") from exc
        return f"written to {final}"

    def close(self) -> None:
        pass


class SmtpTransport:
    """An SMTP relay with STARTTLS or implicit TLS and optional AUTH; one connection reused."""

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
        client.ehlo()
        if cfg.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        password = read_secret(
            env=cfg.password_env, file=cfg.password_file, what="smtp_out.password"
        )
        if cfg.username and password:
            client.login(cfg.username, password)
        return client

    def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes, name: str) -> str:
        try:
            if self.client is None:
                self.client = self._connect()
            refused = self.client.sendmail(mail_from, rcpt_tos, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = {r: c for r, (c, _m) in exc.recipients.items()}
            text = "; ".join(
                f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in exc.recipients.items()
            )
            if all(c >= 500 for c in codes.values()):
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            text = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"
            if exc.smtp_code >= 500:
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc
        if refused:
            return "accepted except " + "; ".join(
                f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in refused.items()
            )
        return f"accepted by {self.config.host}:{self.config.port}"

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self.client = None


def make_transport(config: SmtpOutConfig) -> Transport:
    if config.transport == "file":
        return FileTransport(config.directory)
    return SmtpTransport(config)
