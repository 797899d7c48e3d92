"""The worker over real databases (SQLite file and PostgreSQL): create, thread, de-duplicate."""

from __future__ import annotations

import contextlib
import json

from peewee import IntegrityError

from maild import spool
from maild.app import App
from maild.pipeline.addresses import Signer
from maild.stage import Outcome
from maild.store.models import Attachment, Event, Message, SpoolEntry, Ticket, Watcher
from maild.store.tickets import ticket_detail
from maild.worker import Worker, make_worker
from tests.mailgen import make_mail


def inbound() -> int:
    return Message.select().where(Message.direction == "in").count()


def deliver(app: App, raw: bytes, **envelope) -> SpoolEntry:
    entry_id = spool.enqueue(app.db, raw, source="pipe", **envelope)
    make_worker(app).run_once(ids=[entry_id])
    return SpoolEntry.get_by_id(entry_id)


def test_new_message_creates_ticket(app: App) -> None:
    entry = deliver(app, make_mail(cc="Dan <dan@customer.test>, support@example.com"))
    assert entry.status == "done", entry.last_error
    ticket = Ticket.get()
    assert entry.result.startswith(f"new ACME-{ticket.id}")
    assert ticket.status == "new"
    assert ticket.subject == "Printer on fire"
    assert ticket.requester.email == "carol@customer.test"
    assert ticket.requester.name == "Carol Customer"
    data = ticket_detail(ticket, "ACME")
    assert data["watchers"] == ["dan@customer.test"]
    message, ack = data["messages"]
    assert message["direction"] == "in" and message["kind"] == "customer"
    assert "printer is on fire" in message["body"]
    assert (
        ack["direction"] == "out" and ack["kind"] == "auto" and ack["to"] == ["carol@customer.test"]
    )
    assert [e["action"] for e in data["events"]][:1] == ["created"]
    assert b"my printer is on fire" in bytes(Message.get(Message.direction == "in").raw)


def test_reply_threads_by_subject_tag_under_any_prefix(app: App) -> None:
    deliver(app, make_mail())
    ticket = Ticket.get()
    for subject in (
        f"Re: [ACME-{ticket.id}] Printer on fire",
        f"AW: RE[2]: x [acme-{ticket.id}]",
        f"SV: Fwd: about [ ACME-{ticket.id} ] thanks",
    ):
        entry = deliver(app, make_mail(subject=subject, body="more info\n"))
        assert entry.result.startswith(f"append ACME-{ticket.id}"), entry.result
    assert Ticket.select().count() == 1
    assert inbound() == 4


def test_reply_threads_by_in_reply_to_and_references(app: App) -> None:
    deliver(app, make_mail(message_id="<first@customer.test>"))
    deliver(
        app,
        make_mail(
            subject="Something else",
            in_reply_to="<first@customer.test>",
            message_id="<second@customer.test>",
        ),
    )
    deliver(app, make_mail(subject="Third", references="<zzz@x> <second@customer.test>"))
    assert Ticket.select().count() == 1
    assert inbound() == 3


def test_foreign_or_missing_tags_start_new_tickets(app: App) -> None:
    deliver(app, make_mail())
    first = Ticket.get()
    deliver(app, make_mail(subject=f"[OTHER-{first.id}] other prefix"))
    deliver(app, make_mail(subject="[ACME-999999] no such ticket"))
    deliver(app, make_mail(subject="body only", body=f"see [ACME-{first.id}]\n"))
    assert Ticket.select().count() == 4


def test_same_message_id_twice_is_stored_once(app: App) -> None:
    raw = make_mail(message_id="<dup@customer.test>")
    first = deliver(app, raw)
    second = deliver(app, raw)
    assert first.result.startswith("new")
    assert second.result.startswith("duplicate of ACME-")
    assert inbound() == 1


def test_message_without_message_id_is_keyed_by_its_bytes(app: App) -> None:
    raw = b"From: a@customer.test\r\nTo: support@example.com\r\nSubject: no id\r\n\r\nhello\r\n"
    deliver(app, raw)
    assert deliver(app, raw).result.startswith("duplicate")
    deliver(app, raw.replace(b"hello", b"hello again"))
    assert inbound() == 2


def test_signed_reply_address_threads_and_forged_token_does_not(app: App) -> None:
    deliver(app, make_mail())
    ticket = Ticket.get()
    signer = Signer("ACME", app.secret)
    good = signer.reply_address("support@example.com", ticket.id)
    entry = deliver(app, make_mail(subject="new words", to=good), rcpt_tos=[good])
    assert entry.result.startswith(f"append ACME-{ticket.id}")
    forged = good[: -len("@example.com") - 1] + ("0" if good[-13] != "0" else "1") + "@example.com"
    entry = deliver(app, make_mail(subject="forged", to=forged), rcpt_tos=[forged])
    assert entry.result.startswith("new")


def test_signed_message_id_threads_when_subject_rewritten(app: App) -> None:
    deliver(app, make_mail())
    ticket = Ticket.get()
    signer = Signer("ACME", app.secret)
    ours = signer.message_id(ticket.id, "example.com")
    entry = deliver(app, make_mail(subject="rewritten", in_reply_to=f"<{ours}>"))
    assert entry.result.startswith(f"append ACME-{ticket.id}")
    forged = ours.replace(ours.split(".")[1], "0" * 12)
    entry = deliver(app, make_mail(subject="rewritten", in_reply_to=f"<{forged}>"))
    assert entry.result.startswith("new")


def test_reply_text_is_stripped_of_quotes(app: App) -> None:
    deliver(app, make_mail(message_id="<q1@customer.test>"))
    ticket = Ticket.get()
    body = (
        "Here is the serial number: 12345.\n\n"
        "On Mon, 2 Nov 2026 at 09:30, Support <support@example.com> wrote:\n"
        "> Could you send the serial number?\n> \n> Thanks\n"
    )
    deliver(app, make_mail(subject=f"Re: [ACME-{ticket.id}] Printer on fire", body=body))
    reply = Message.select().where(Message.direction == "in").order_by(Message.id.desc()).first()
    assert reply.body.strip() == "Here is the serial number: 12345."
    assert "Could you send" in reply.full_text


def test_customer_reply_reopens_pending_and_closed_starts_followup(app: App) -> None:
    deliver(app, make_mail())
    ticket = Ticket.get()
    ticket.status = "pending"
    ticket.save()
    deliver(app, make_mail(subject=f"Re: [ACME-{ticket.id}] x", body="still broken\n"))
    assert Ticket.get_by_id(ticket.id).status == "open"
    Ticket.update(status="closed").where(Ticket.id == ticket.id).execute()
    entry = deliver(app, make_mail(subject=f"Re: [ACME-{ticket.id}] x", body="again!\n"))
    followup = Ticket.select().order_by(Ticket.id.desc()).first()
    assert followup.id != ticket.id and followup.parent_id == ticket.id
    assert entry.result.startswith(f"new ACME-{followup.id}")
    actions = [e.action for e in Event.select().where(Event.ticket == ticket)]
    assert "followup" in actions


def test_html_only_mail_is_rendered_to_text(app: App) -> None:
    raw = (
        b"From: h@customer.test\r\nTo: support@example.com\r\nSubject: html\r\n"
        b"Message-ID: <html1@customer.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>Hello <b>there</b></p><script>evil()</script>"
        b"<ul><li>one</li><li>two</li></ul></body></html>\r\n"
    )
    deliver(app, raw)
    body = Message.get(Message.direction == "in").body
    assert "Hello there" in body and "one" in body and "<b>" not in body and "evil" not in body


def test_attachments_are_content_addressed_with_safe_names(app: App) -> None:
    raw = make_mail(
        attachments=[
            ("../../etc/passwd", "text/plain", b"root:x:0:0\n"),
            ("/abs/path/report.pdf", "application/pdf", b"%PDF-1.4 x"),
            ("..\\..\\win.ini", "application/octet-stream", b"[x]"),
            ("same.bin", "application/octet-stream", b"%PDF-1.4 x"),
        ]
    )
    entry = deliver(app, raw)
    assert entry.status == "done", entry.last_error
    names = sorted(a.filename for a in Attachment.select())
    assert names == ["passwd", "report.pdf", "same.bin", "win.ini"]
    root = app.data_dir / "attachments"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) == 3  # the two identical payloads share one file
    assert not (app.data_dir.parent / "etc").exists()
    for path in files:
        assert path.resolve().is_relative_to(root.resolve())


def test_bounce_of_our_mail_lands_on_its_ticket_without_new_ticket(app: App) -> None:
    deliver(app, make_mail())
    ticket = Ticket.get()
    ours = Signer("ACME", app.secret).message_id(ticket.id, "example.com")
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\n"
        "To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.customer.test>\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        "Final-Recipient: rfc822; carol@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@example.com\r\nTo: carol@customer.test\r\nMessage-ID: <{ours}>\r\n"
        "Subject: [ACME-1] Printer on fire\r\n\r\n--B--\r\n"
    ).encode()
    entry = deliver(app, dsn, mail_from="")
    assert entry.result.startswith(f"append ACME-{ticket.id}"), entry.result
    assert Ticket.select().count() == 1
    robot = Message.select().where(Message.direction == "in").order_by(Message.id.desc()).first()
    assert robot.kind == "robot" and robot.classification == "bounce"
    event = Event.get(Event.action == "robot_mail")
    assert "carol@customer.test" in json.loads(event.detail)["bounced"]


def test_processing_error_is_retried_then_quarantined(app: App, monkeypatch) -> None:
    from maild.store import intake

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure in a stage")

    monkeypatch.setattr(intake, "find_ticket", boom)
    entry_id = spool.enqueue(app.db, make_mail(), source="pipe")
    worker = make_worker(app)
    for _ in range(app.config.worker.max_attempts):
        SpoolEntry.update(not_before=None).where(SpoolEntry.id == entry_id).execute()
        worker.run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "quarantined"
    assert "simulated failure" in entry.last_error
    assert Ticket.select().count() == 0
    monkeypatch.undo()
    spool.retry(app.db, entry_id)
    make_worker(app).run_once(ids=[entry_id])
    assert SpoolEntry.get_by_id(entry_id).status == "done"
    assert Ticket.select().count() == 1


def test_crash_before_commit_leaves_message_pending_and_it_is_done_once(app: App, monkeypatch):
    """A worker that dies mid-transaction leaves nothing half-written; the next pass does it once."""
    entry_id = spool.enqueue(app.db, make_mail(message_id="<crash@customer.test>"), source="pipe")
    from maild.store import tickets as store_tickets

    def die(*args, **kwargs):
        raise SystemExit("killed mid-transaction")

    monkeypatch.setattr(store_tickets, "add_watchers", die)
    with contextlib.suppress(SystemExit):
        make_worker(app).run_once(ids=[entry_id])
    monkeypatch.undo()
    assert Ticket.select().count() == 0 and inbound() == 0
    # The claim of the "dead" worker is still leased; release it as a restart would.
    SpoolEntry.update(claimed_until=None).where(SpoolEntry.id == entry_id).execute()
    make_worker(app).run_once(ids=[entry_id])
    make_worker(app).run_once()
    assert Ticket.select().count() == 1 and inbound() == 1
    assert SpoolEntry.get_by_id(entry_id).status == "done"


# -- only a duplicate Message-ID counts as "duplicate (concurrent)".
# The worker caught every IntegrityError of the store transaction and marked the spool row done as
# a concurrent duplicate. A constraint violation of any other kind (in a hook, a rule, a future
# table) therefore dropped the message silently: done, no ticket message, no retry, no quarantine.
# Now the row is done as a duplicate only when the message's de-duplication key is in fact stored;
# anything else is a failure that is retried, then quarantined.


def test_an_unrelated_integrity_error_is_retried_not_dropped(app: App) -> None:
    def stage(stored) -> Outcome:
        raise IntegrityError("NOT NULL constraint failed: something.else")

    entry_id = spool.enqueue(app.db, make_mail(), source="pipe")
    Worker(app, stages=[stage]).run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "pending", entry.result
    assert "IntegrityError" in (entry.last_error or "")
    assert Message.select().count() == 0
    # The same message without the fault is stored normally.
    spool.retry(app.db, entry_id)
    Worker(app).run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "done" and entry.result.startswith("new ACME-"), entry.result


def test_a_concurrent_duplicate_is_still_recognised(app: App) -> None:
    raw = make_mail(message_id="<same@customer.test>")
    first = spool.enqueue(app.db, raw, source="pipe")
    Worker(app).run_once(ids=[first])
    second = spool.enqueue(app.db, raw, source="pipe")

    # The second worker's duplicate check runs before the first worker's commit.
    original = Message.get_or_none

    def not_yet(*args, **kwargs):
        return None

    Message.get_or_none = not_yet  # type: ignore[method-assign]
    try:
        Worker(app).run_once(ids=[second])
    finally:
        Message.get_or_none = original  # type: ignore[method-assign]
    entry = SpoolEntry.get_by_id(second)
    assert entry.status == "done" and entry.result == "duplicate (concurrent)", entry.result
    assert Message.select().where(Message.direction == "in").count() == 1


# -- two different messages whose long Message-IDs share a prefix are both stored.
# A Message-ID over 490 characters was cut to its first 490 and de-duplicated on that: a sender
# whose ids carry a long fixed part before the unique one (a signed token, a tracking blob) had every
# message after the first dropped as a "duplicate", acknowledged by SMTP and never stored.


def _raw(message_id: str, body: str) -> bytes:
    return (
        "From: Carol <carol@customer.test>\r\nTo: support@example.com\r\n"
        f"Subject: Question\r\nMessage-ID: <{message_id}>\r\n\r\n{body}\r\n"
    ).encode()


def test_long_message_ids_sharing_a_prefix_are_two_messages(app: App) -> None:
    common = "x" * 600
    first = deliver(app, _raw(f"{common}.1@bulk.test", "first question"))
    second = deliver(app, _raw(f"{common}.2@bulk.test", "second question"))
    assert first.status == "done" and second.status == "done", (first.result, second.result)
    assert "duplicate" not in second.result, second.result
    assert Message.select().where(Message.direction == "in").count() == 2


def test_the_same_long_message_id_is_still_a_duplicate(app: App) -> None:
    message_id = "y" * 1000 + "@bulk.test"
    deliver(app, _raw(message_id, "once"))
    again = deliver(app, _raw(message_id, "once"))
    assert again.status == "done" and "duplicate" in again.result, again.result
    assert Message.select().where(Message.direction == "in").count() == 1


# -- a stranger's mail threaded into someone else's ticket cannot subscribe addresses.
# Every To/Cc address of any customer mail that threaded into a ticket became a watcher, and
# watchers get the agents' answers in Cc. Ticket numbers are sequential and the subject tag is all
# it takes to thread, so an outsider writing "Re: [ACME-1]" with their own second address in Cc
# received every later answer on a stranger's ticket. Now only the requester's and the existing
# watchers' mail adds watchers (a new ticket's requester adds theirs as before).


def deliver_result(app: App, raw: bytes) -> str:
    entry_id = spool.enqueue(app.db, raw, source="pipe")
    make_worker(app).run_once(ids=[entry_id])
    return spool.SpoolEntry.get_by_id(entry_id).result


def _watchers() -> list[str]:
    return sorted(w.email for w in Watcher.select())


def test_a_strangers_cc_does_not_become_a_watcher(app: App) -> None:
    deliver_result(app, make_mail(cc="dan@customer.test"))
    ticket = Ticket.get()
    result = deliver_result(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] Printer on fire",
            sender="Mallory <mallory@evil.test>",
            cc="mallory-inbox@evil.test",
            body="please keep me posted\n",
        ),
    )
    assert result.startswith(f"append ACME-{ticket.id}"), result
    assert _watchers() == ["dan@customer.test"]


def test_the_requester_and_watchers_still_add_watchers(app: App) -> None:
    deliver_result(app, make_mail(cc="dan@customer.test"))
    ticket = Ticket.get()
    deliver_result(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] x", cc="erin@customer.test", body="adding Erin\n"
        ),
    )
    deliver_result(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] x",
            sender="dan@customer.test",
            cc="frank@customer.test",
            body="and Frank\n",
        ),
    )
    assert _watchers() == ["dan@customer.test", "erin@customer.test", "frank@customer.test"]


def test_given_ids_are_processed_oldest_first_across_claim_chunks_and_only_they(
    app: App, monkeypatch
) -> None:
    import maild.worker

    monkeypatch.setattr(maild.worker, "CLAIM_CHUNK", 3)  # seven ids: three claim chunks
    ids = [
        spool.enqueue(app.db, make_mail(subject=f"Chunk {n}", message_id=f"<chunk{n}@c.test>"),
                      source="pipe")
        for n in range(8)
    ]  # fmt: skip
    other = ids.pop(3)  # a row the caller did not name stays pending
    assert make_worker(app).run_once(ids=list(reversed(ids))) == 7
    done = SpoolEntry.select().where(SpoolEntry.status == "done").order_by(SpoolEntry.done_at)
    assert sorted(e.id for e in done) == ids
    subjects = [t.subject for t in Ticket.select().order_by(Ticket.id)]
    assert subjects == [f"Chunk {n}" for n in range(8) if n != 3]  # in spool order
    assert SpoolEntry.get_by_id(other).status == "pending"
    assert make_worker(app).run_once(ids=[other], limit=1) == 1


def test_one_bad_message_in_a_batch_fails_alone_and_the_others_are_stored(app: App) -> None:
    def stage(stored) -> Outcome:
        if "poison" in stored.ticket.subject:
            raise RuntimeError("a stage fails on this message only")
        return Outcome()

    ids = [
        spool.enqueue(
            app.db, make_mail(subject=subject, message_id=f"<b{n}@c.test>"), source="pipe"
        )
        for n, subject in enumerate(["one", "two", "poison", "four", "five"])
    ]
    worker = Worker(app, stages=[stage])
    assert worker.run_once() == 5  # one pass: the batch holds all five
    statuses = {i: SpoolEntry.get_by_id(i) for i in ids}
    assert [statuses[i].status for i in ids] == ["done", "done", "pending", "done", "done"]
    assert "a stage fails on this message only" in statuses[ids[2]].last_error
    assert statuses[ids[2]].attempts == 1  # failed once, retried later
    assert Ticket.select().count() == 4
    assert Message.select().where(Message.subject == "poison").count() == 0
