"""Building test messages with the stdlib, the way a mail client would."""

from __future__ import annotations

import datetime as dt
import itertools
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

_counter = itertools.count(1)


def make_mail(
    *,
    subject: str = "Printer on fire",
    sender: str = "Carol Customer <carol@customer.test>",
    to: str = "support@example.com",
    cc: str | None = None,
    body: str = "Hello,\n\nmy printer is on fire.\n\nCarol\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(
        dt.datetime(2026, 11, 2, 9, 30, next(_counter) % 60, tzinfo=dt.UTC)
    )
    msg["Message-ID"] = message_id or make_msgid(domain="customer.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, payload in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
