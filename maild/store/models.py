"""The peewee schema: tickets, messages, attachments, contacts, the audit trail, spool and outbox.

All times are naive UTC datetimes; the CLI renders them as ISO 8601 with an offset. Models are bound
to ``database_proxy``, which :func:`maild.store.db.open_database` initialises from ``database.url``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from peewee import (
    SQL,
    AutoField,
    BlobField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database_proxy = DatabaseProxy()


def utcnow() -> dt.datetime:
    """The current time as naive UTC, the form every column stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(Model):
    # peewee adds attributes when a model class is created, which its stubs cannot show: the
    # implicit ``id`` primary key, ``<name>_id`` for every foreign key, each ``backref`` on the
    # model it points to, and a field named ``raw`` shadows ``Model.raw``. This is the one place
    # where mypy is told about them (as ``Any``), so no call site needs an ignore comment.
    if TYPE_CHECKING:
        id: Any
        raw: Any

        def __getattr__(self, name: str) -> Any: ...

    class Meta:
        database = database_proxy
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """One row: the schema version the database has been upgraded to."""

    version = IntegerField()


class Contact(BaseModel):
    """Anyone who wrote to us or whom we wrote to, keyed by lower-cased address."""

    email = CharField(max_length=320, unique=True)
    name = CharField(max_length=200, default="")
    created_at = DateTimeField(default=utcnow)


class SpoolEntry(BaseModel):
    """A raw inbound message, durable before it is acknowledged, until the worker has stored it.

    status: ``pending`` (waiting or being retried), ``done`` or ``quarantined``. A claim is a lease:
    ``claimed_by``/``claimed_until``; an expired lease (a crashed worker) makes the row claimable again.
    """

    id = AutoField()
    received_at = DateTimeField(default=utcnow, index=True)
    source = CharField(max_length=20)  # smtp | imap | pipe
    source_ref = CharField(
        max_length=500, null=True, index=True
    )  # e.g. imap mailbox/folder/uidv/uid
    mail_from = CharField(max_length=320, default="")
    rcpt_tos = TextField(default="[]")  # JSON list
    raw = BlobField()
    size = IntegerField()
    sha256 = CharField(max_length=64)
    status = CharField(max_length=12, default="pending", index=True)
    attempts = IntegerField(default=0)
    not_before = DateTimeField(null=True)
    claimed_by = CharField(max_length=200, null=True)
    claimed_until = DateTimeField(null=True)
    last_error = TextField(null=True)
    done_at = DateTimeField(null=True)
    result = TextField(null=True)  # what the worker did, e.g. "new ACME-12"


class Ticket(BaseModel):
    """A support case. Its reference is ``PREFIX-<id>``."""

    id = AutoField()
    subject = TextField(default="")
    status = CharField(max_length=12, default="new", index=True)
    priority = CharField(max_length=10, default="normal", index=True)
    team = CharField(max_length=100, null=True)  # indexed as lower(team): maild.store.indexes
    assignee = CharField(max_length=320, null=True, index=True)
    requester = ForeignKeyField(Contact, backref="tickets")
    support_address = CharField(max_length=320, default="")
    parent = ForeignKeyField("self", null=True, backref="followups")
    spam = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow, index=True)
    updated_at = DateTimeField(default=utcnow)
    first_response_at = DateTimeField(null=True)
    resolved_at = DateTimeField(null=True)
    closed_at = DateTimeField(null=True)
    sla_policy = CharField(max_length=100, null=True)
    first_response_due = DateTimeField(null=True)
    resolution_due = DateTimeField(null=True)
    satisfaction_rating = IntegerField(null=True)
    satisfaction_comment = TextField(null=True)


class TicketTag(BaseModel):
    ticket = ForeignKeyField(Ticket, backref="tag_rows", on_delete="CASCADE")
    tag = CharField(max_length=100)

    class Meta:
        indexes = ((("ticket", "tag"), True), (("tag", "ticket"), False))


class TicketField(BaseModel):
    """A custom field's value (declared in the rules files). A value whose field was renamed or
    removed stays readable; ``rules check`` warns about it."""

    ticket = ForeignKeyField(Ticket, backref="field_rows", on_delete="CASCADE")
    name = CharField(max_length=100)
    value = TextField()

    class Meta:
        indexes = ((("ticket", "name"), True), (("name", "value"), False))


class TicketSubstatus(BaseModel):
    """A custom status on a ticket (the rules files' ``statuses``); ``Ticket.status`` holds its
    base, so everything that reads the status (SLA clocks, reminders, auto-close, reports)
    follows the base. Any change of the base status removes the row."""

    ticket = ForeignKeyField(Ticket, backref="substatus_rows", on_delete="CASCADE", unique=True)
    name = CharField(max_length=100)
    label = CharField(max_length=200, default="")  # what the customer sees, as set


class Watcher(BaseModel):
    """An address copied on public replies (the customer's CCs, or added by an agent)."""

    ticket = ForeignKeyField(Ticket, backref="watchers", on_delete="CASCADE")
    email = CharField(max_length=320)
    name = CharField(max_length=200, default="")

    class Meta:
        indexes = ((("ticket", "email"), True),)


class Message(BaseModel):
    """One mail on a ticket, inbound or outbound. ``dedup_key`` makes a re-delivered message a no-op."""

    id = AutoField()
    ticket = ForeignKeyField(Ticket, backref="messages", on_delete="CASCADE")
    direction = CharField(max_length=3)  # in | out
    kind = CharField(max_length=10)  # customer | agent | note | auto | robot | outsider
    message_id = CharField(max_length=500, index=True)
    dedup_key = CharField(max_length=520, unique=True)
    from_addr = CharField(max_length=320, default="")
    from_name = CharField(max_length=200, default="")
    to_addrs = TextField(default="[]")  # JSON list of addresses
    cc_addrs = TextField(default="[]")
    subject = TextField(default="")
    body = TextField(default="")  # the visible text: quotes and signature removed
    full_text = TextField(default="")  # the whole text body
    html = TextField(null=True)
    in_reply_to = TextField(default="")
    references = TextField(default="")
    classification = CharField(max_length=20, default="human")
    raw = BlobField(null=True)
    spool_entry = IntegerField(null=True)
    created_at = DateTimeField(default=utcnow, index=True)
    # A customer's mail: VADER's compound score, -1 to 1 (maild.pipeline.sentiment); None for
    # other mail, and when the package is missing.
    sentiment = FloatField(null=True)


class Attachment(BaseModel):
    """An attachment stored content-addressed under ``data_dir/attachments``."""

    message = ForeignKeyField(Message, backref="attachments", on_delete="CASCADE")
    filename = CharField(max_length=255)
    content_type = CharField(max_length=200)
    size = IntegerField()
    sha256 = CharField(max_length=64, index=True)
    inline = BooleanField(default=False)
    content_id = CharField(max_length=500, null=True)


class Event(BaseModel):
    """The append-only audit trail: who did what to a ticket, when, and from which message."""

    id = AutoField()
    ticket = ForeignKeyField(Ticket, backref="events", on_delete="CASCADE")
    at = DateTimeField(default=utcnow, index=True)
    actor = CharField(max_length=320)  # an address, "system", or "rule:NAME"
    action = CharField(max_length=50)
    detail = TextField(default="{}")  # JSON object
    message = ForeignKeyField(Message, null=True, backref="events", on_delete="SET NULL")


class OutboxEntry(BaseModel):
    """An outgoing message, written in the same transaction as the change that caused it."""

    id = AutoField()
    ticket = ForeignKeyField(Ticket, null=True, backref="outbox", on_delete="SET NULL")
    message = ForeignKeyField(Message, null=True, backref="outbox", on_delete="SET NULL")
    kind = CharField(max_length=20)  # auto | agent | notify | survey ...
    # The recipient of an automatic mail, for the per-address rate limit; NULL for other mail.
    auto_to = CharField(max_length=320, null=True, index=True)
    mail_from = CharField(max_length=320)  # envelope sender
    rcpt_tos = TextField()  # JSON list
    raw = BlobField()
    status = CharField(max_length=10, default="queued", index=True)  # queued | sent | failed
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow, index=True)
    claimed_by = CharField(max_length=200, null=True)
    claimed_until = DateTimeField(null=True)
    last_error = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)


class Suppression(BaseModel):
    """An address that gets no automatic mail until ``until`` (it bounced, or asked us to stop)."""

    email = CharField(max_length=320, unique=True)
    until = DateTimeField()
    reason = TextField(default="")


class KeyValue(BaseModel):
    """Small durable state: round-robin positions and the like."""

    key = CharField(max_length=200, primary_key=True)
    value = TextField()


class ImapState(BaseModel):
    """Per mailbox and folder: the UIDVALIDITY seen and the highest UID safely spooled."""

    mailbox = CharField(max_length=200)
    folder = CharField(max_length=500)
    uidvalidity = IntegerField()
    last_uid = IntegerField(default=0)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("mailbox", "folder"), True),)


class SlaPause(BaseModel):
    """A stretch in which a ticket's SLA clocks stood still (it was pending, resolved or closed).

    ``ended_at`` is NULL while the pause lasts; a ticket has at most one open pause.
    """

    id = AutoField()
    ticket = ForeignKeyField(Ticket, backref="sla_pauses", on_delete="CASCADE")
    status = CharField(max_length=12)
    started_at = DateTimeField()
    ended_at = DateTimeField(null=True)


class SlaFiring(BaseModel):
    """An escalation step or lifecycle action done for a ticket. The unique key, inserted in the
    transaction that acts, makes each one happen once even with several sweeping processes.

    ``policy`` is an SLA policy's name or ``lifecycle``; ``step`` names the step within it.
    """

    id = AutoField()
    ticket = ForeignKeyField(Ticket, backref="sla_firings", on_delete="CASCADE")
    policy = CharField(max_length=100)
    step = CharField(max_length=200)
    fired_at = DateTimeField()

    class Meta:
        indexes = ((("ticket", "policy", "step"), True),)


class Heartbeat(BaseModel):
    """The last sign of life of one part of a running daemon (maild.ops.heartbeat).

    ``name`` is e.g. ``worker:HOST:PID`` or ``imap:MAILBOX``; ``at`` the last
    report, ``ok_at`` the last successful one; the part counts as gone when ``at`` (or, for
    IMAP, ``ok_at``) is older than ``stale_seconds``.
    """

    name = CharField(max_length=300, primary_key=True)
    kind = CharField(max_length=20)  # worker | imap
    at = DateTimeField()
    ok = BooleanField(default=True)
    ok_at = DateTimeField(null=True)
    stale_seconds = IntegerField()
    detail = TextField(default="")


class OpsTally(BaseModel):
    """Running totals that outlive the rows they count (retention deletes spool and outbox
    rows): what the metrics add to the rows still in the tables, keyed e.g. ``spool.done.smtp``."""

    key = CharField(max_length=200, primary_key=True)
    value = IntegerField(default=0)


class ApiIntake(BaseModel):
    """One message received through ``POST /api/v1/messages``: a channel's ``external_id`` is
    stored once, in the transaction that spools it, so a retried submission is a duplicate."""

    channel = CharField(max_length=100)
    external_id = CharField(max_length=200)
    spool_id = IntegerField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("channel", "external_id"), True),)


class StatusLinkRevocation(BaseModel):
    """Requester status links of a ticket issued before ``revoked_at`` no longer open it."""

    ticket = ForeignKeyField(Ticket, unique=True, backref="link_revocations", on_delete="CASCADE")
    revoked_at = DateTimeField()


class WebhookPending(BaseModel):
    """An audit event that outside systems may hear of, written in the transaction of the event
    itself; the webhook sender turns it into deliveries (one per interested target) and deletes
    it, so a crash in between repeats the fan-out, never skips it."""

    id = AutoField()
    event = ForeignKeyField(Event, backref="webhook_pending", on_delete="CASCADE")


class WebhookDelivery(BaseModel):
    """One signed POST to one target (a ``webhooks:`` entry, a Slack thread or an API channel's
    ``reply_url``). Deliveries of one target for one ticket go out in id order; a redelivery
    keeps ``webhook_id``. status: ``queued``, ``sent`` or ``failed`` (with the last answer)."""

    id = AutoField()
    target = CharField(max_length=120)  # hook:NAME | slack:CHANNEL | reply:CHANNEL
    event = CharField(max_length=40)  # ticket.created, message.created, ...
    ticket = IntegerField(null=True)
    webhook_id = CharField(max_length=64, unique=True)
    body = BlobField()
    status = CharField(max_length=10, default="queued", index=True)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    claimed_by = CharField(max_length=200, null=True)
    claimed_until = DateTimeField(null=True)
    last_status = IntegerField(null=True)  # the receiver's last HTTP status, if it answered
    last_error = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)


class TicketLink(BaseModel):
    """Two related tickets (``#link``), stored once with the lower number first."""

    low = ForeignKeyField(Ticket, backref="links_low", on_delete="CASCADE")
    high = ForeignKeyField(Ticket, backref="links_high", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("low", "high"), True),)


class TicketMerge(BaseModel):
    """A ticket merged into another (``#merge``, ``tickets merge``): mail that threads to the
    old reference, its signed address or its Message-IDs goes to ``target`` instead."""

    source = ForeignKeyField(Ticket, unique=True, backref="merged_into_rows", on_delete="CASCADE")
    target = ForeignKeyField(Ticket, backref="merged_from_rows", on_delete="CASCADE")
    merged_at = DateTimeField(default=utcnow)


class TicketSnooze(BaseModel):
    """A ticket set pending by ``#snooze`` until ``until`` (naive UTC): the SLA sweep opens it
    then; any status change before (a customer's reply) ends the snooze."""

    ticket = ForeignKeyField(Ticket, unique=True, backref="snooze_rows", on_delete="CASCADE")
    until = DateTimeField(index=True)
    by = CharField(max_length=320)


class TicketOrigin(BaseModel):
    """Where a ticket came in, written when it is created: an HTTP channel (an API channel, or
    Slack with its channel and thread), whose answers go back there, or ``""`` for mail and the
    web form. A merge moves messages, never this row."""

    ticket = ForeignKeyField(Ticket, primary_key=True, backref="origin_rows", on_delete="CASCADE")
    channel = CharField(max_length=100, default="")
    slack_channel = CharField(max_length=40, null=True)
    thread_ts = CharField(max_length=40, null=True)


class KbArticle(BaseModel):
    """A knowledge-base article as last indexed from ``kb_dir`` (maild.kb). The full-text index
    beside it is backend-specific (``kb_fts`` on SQLite, ``kb_vector`` on PostgreSQL, made by
    :mod:`maild.kb.index`); both are a cache of the files, rebuilt when they change."""

    id = AutoField()
    slug = CharField(max_length=200, unique=True)
    title = TextField()
    tags = TextField(default="[]")  # JSON list
    team = CharField(max_length=200, null=True)
    language = CharField(max_length=20, default="en")
    body = TextField(default="")  # the Markdown text after the front matter
    stamp = CharField(max_length=100)  # the file's mtime_ns:size when it was indexed


class KbSuggestion(BaseModel):
    """An article suggested to a ticket's requester in the acknowledgement (reports: deflection)."""

    id = AutoField()
    ticket = ForeignKeyField(Ticket, backref="kb_suggestions", on_delete="CASCADE")
    slug = CharField(max_length=200, index=True)
    score = FloatField()
    created_at = DateTimeField(default=utcnow)


ALL_MODELS: tuple[type[BaseModel], ...] = (
    SchemaVersion,
    Contact,
    SpoolEntry,
    Ticket,
    TicketTag,
    TicketField,
    TicketSubstatus,
    Watcher,
    Message,
    Attachment,
    Event,
    OutboxEntry,
    Suppression,
    KeyValue,
    ImapState,
    SlaPause,
    SlaFiring,
    Heartbeat,
    OpsTally,
    ApiIntake,
    StatusLinkRevocation,
    WebhookPending,
    WebhookDelivery,
    TicketLink,
    TicketMerge,
    TicketSnooze,
    TicketOrigin,
    KbArticle,
    KbSuggestion,
)

__all__ = ["SQL", "database_proxy", "utcnow"]
