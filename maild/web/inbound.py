"""Turning what the web receives into an RFC 5322 message for the spool (source ``web``/``api``).

The web form, the API and the status page's reply form all end here, so the worker threads,
routes, acknowledges and times them exactly like mail. Values typed by strangers never become
headers as they are: names and subjects are reduced to one line without control characters
(no CR/LF header injection), addresses are checked by email-validator and built as objects, and
attachment names are sanitized. The spool row is committed before anyone is told "received".
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from email_validator import EmailNotValidError, validate_email
from peewee import Database

from maild import spool
from maild.config import Config
from maild.routing import given_fields
from maild.store.attachments import sanitize_filename

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")
_SPACES = re.compile(r"\s+")
_ENCODED_WORD = re.compile(r"=\?|\?=")
MAX_TEXT_CHARS = 200_000
MAX_SUBJECT_CHARS = 300
MAX_NAME_CHARS = 200


class InputError(ValueError):
    """A field the client must correct; the text is shown to them."""


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


def one_line(value: str, limit: int) -> str:
    """One line, without control characters or line separators, at most ``limit`` chars."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()[:limit]


def display_name(value: str) -> str:
    name = one_line(value, MAX_NAME_CHARS)
    while _ENCODED_WORD.search(name):  # "=?utf-8?q?x=40evil?=" must stay a name, not an address
        name = _ENCODED_WORD.sub(lambda m: m.group(0)[0] + " " + m.group(0)[1], name)
    return name


def checked_address(value: str) -> str:
    """The normalized address, or :class:`InputError` with email-validator's reason."""
    if _CONTROL.search(value) or len(value) > 254:
        raise InputError("This is not an e-mail address.")
    try:
        return validate_email(
            value.strip(), check_deliverability=False, allow_smtputf8=False
        ).normalized.lower()
    except EmailNotValidError as exc:
        raise InputError(str(exc)) from None


def body_text(value: str) -> str:
    text = value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"The message is longer than {MAX_TEXT_CHARS} characters.")
    return text


def check_uploads(uploads: Sequence[Upload], config: Config) -> None:
    """The attachment limits of mail (``attachments.max_count``/``max_bytes``): InputError."""
    limits = config.attachments
    if len(uploads) > limits.max_count:
        raise InputError(f"At most {limits.max_count} attachments.")
    for upload in uploads:
        if len(upload.data) > limits.max_bytes:
            raise InputError(
                f"The attachment {upload.filename!r} is larger than {limits.max_bytes} bytes."
            )


def build_message(
    *,
    from_email: str,
    from_name: str,
    to: str,
    subject: str,
    text: str,
    now: dt.datetime,
    source: str,
    client: str,
    uploads: Sequence[Upload] = (),
    message_id: str | None = None,
    in_reply_to: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> bytes:
    """An RFC 5322 message from ``from_email`` to ``to`` (both already checked addresses)."""
    msg = EmailMessage(policy=policy.SMTP)
    local, _, domain = from_email.rpartition("@")
    to_local, _, to_domain = to.rpartition("@")
    when = now.replace(tzinfo=dt.UTC)
    msg["Received"] = (
        f"from [{one_line(client, 60)}] by ticketd ({source}); {format_datetime(when)}"
    )
    msg["From"] = Address(display_name=display_name(from_name), username=local, domain=domain)
    msg["To"] = Address(username=to_local, domain=to_domain)
    msg["Subject"] = one_line(subject, MAX_SUBJECT_CHARS) or "(no subject)"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<{message_id or f'{source}.{secrets.token_hex(12)}@{to_domain}'}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    msg["X-Ticketd-Source"] = source
    if fields:  # custom field values, already checked (believed only from source web/api)
        msg[given_fields.HEADER] = given_fields.encode(fields)
    msg.set_content(text or "", subtype="plain", charset="utf-8")
    for index, upload in enumerate(uploads, 1):
        maintype, _, subtype = upload.content_type.partition("/")
        if not re.fullmatch(r"[\w.+-]+", maintype or "") or not re.fullmatch(
            r"[\w.+-]+", subtype or ""
        ):
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(
            upload.data,
            maintype=maintype,
            subtype=subtype,
            filename=sanitize_filename(
                upload.filename, content_type=f"{maintype}/{subtype}", index=index
            ),
        )
    return msg.as_bytes()


def enqueue(db: Database, raw: bytes, *, source: str, mail_from: str, rcpt: str) -> int:
    """Commit ``raw`` to the spool (raises SpoolError when it cannot be made durable)."""
    db.connect(reuse_if_open=True)
    return spool.enqueue(db, raw, source=source, mail_from=mail_from, rcpt_tos=[rcpt])
