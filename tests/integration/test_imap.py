"""IMAP intake against a real Dovecot on loopback: spooling, after actions, faults, IDLE, the CLI.

One Dovecot serves the whole module; each test gets fresh users, so tests never see each other's
mail. Waiting is done on events (the poller's ``on_spooled`` and ``idling``, log records), never
on sleeps.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import SEEN, IMAPClient

from maild.app import App
from maild.cli.main import main
from maild.config import load_config
from maild.errors import ConfigError
from maild.intake.imap import (
    MailboxPoller,
    backoff_delay,
    check,
    parse_mailboxes,
    start_imap_threads,
)
from maild.store.models import ImapState, SpoolEntry, Ticket
from tests.conftest import base_config, missing
from tests.mailgen import make_mail
from tests.servers.dovecot import Dovecot

# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
def entry(dovecot: Dovecot, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """An ``imap.mailboxes`` entry for a user of the test server (a fresh user by default)."""

    def make(
        user: str | None = None, *, name: str = "support", password: str | None = None, **over: Any
    ) -> dict[str, Any]:
        user = user or dovecot.add_user()
        secret = tmp_path / f"{name}.password"
        secret.write_text((password or dovecot.passwords[user]) + "\n", encoding="utf-8")
        return {
            "name": name,
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": user,
            "password_file": str(secret),
            "poll_seconds": 600,
            "retry_first_seconds": 0.1,
            "retry_max_seconds": 0.4,
            **over,
        }

    return make


@pytest.fixture
def pollers() -> Iterator[Callable[..., MailboxPoller]]:
    """Make a poller for an app's n-th mailbox; all are logged out at the end."""
    made: list[MailboxPoller] = []

    def make(app: App, index: int = 0, **kwargs: Any) -> MailboxPoller:
        mailbox = parse_mailboxes(app.config.imap.mailboxes, app.config.source)[index]
        poller = MailboxPoller(app, mailbox, **kwargs)
        made.append(poller)
        return poller

    yield make
    for poller in made:
        poller.close()


class LogWatch(logging.Handler):
    """Collects ``ticketd.imap`` log lines and lets a test wait for them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.lines.append(record.getMessage())
            self.changed.notify_all()

    def wait_for(self, needle: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        def found() -> list[str]:
            return [line for line in self.lines if needle in line]

        with self.changed:
            self.changed.wait_for(lambda: len(found()) >= count, timeout)
            return found()


@pytest.fixture
def imap_log() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("ticketd.imap")
    logger.addHandler(watch)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield watch
    logger.setLevel(old_level)
    logger.removeHandler(watch)


def mails(n: int, tag: str = "help") -> list[bytes]:
    return [make_mail(subject=f"{tag} {i}") for i in range(1, n + 1)]


def spooled() -> list[SpoolEntry]:
    return list(SpoolEntry.select().where(SpoolEntry.source == "imap").order_by(SpoolEntry.id))


def uid_of(entry: SpoolEntry) -> int:
    return int(entry.source_ref.rsplit("/", 1)[1])


def lf(raw: bytes) -> bytes:
    return bytes(raw).replace(b"\r\n", b"\n")


def server_flags(server: Dovecot, user: str, folder: str) -> dict[int, tuple[bytes, ...]]:
    with server.client(user) as client:
        client.select_folder(folder, readonly=True)
        return client.get_flags(client.search("ALL"))


def run_in_thread(poller: MailboxPoller, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    return thread


# -- spooling and after actions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "left_in_inbox", "moved"),
    [("seen", 3, 0), ("move:Processed", 0, 3), ("delete", 0, 0)],
)
def test_appended_mail_is_spooled_once_then_marked_or_moved(
    dovecot, entry, app_factory, any_db_url, pollers, after, left_in_inbox, moved
) -> None:
    box = entry(after=after)
    sent = mails(3)
    dovecot.append(box["username"], "INBOX", sent)
    app = app_factory(any_db_url, imap={"mailboxes": [box]})
    poller = pollers(app)

    assert poller.sync_once() == 3
    rows = spooled()
    assert [lf(r.raw) for r in rows] == [lf(m) for m in sent]
    assert [uid_of(r) for r in rows] == [1, 2, 3]
    assert {r.status for r in rows} == {"pending"}
    inbox = server_flags(dovecot, box["username"], "INBOX")
    assert len(inbox) == left_in_inbox
    assert all(SEEN in flags for flags in inbox.values())
    if moved:
        processed = server_flags(dovecot, box["username"], "Processed")
        assert len(processed) == moved
        assert not any(SEEN in flags for flags in processed.values())  # BODY.PEEK[] only

    assert poller.sync_once() == 0
    assert pollers(app).sync_once() == 0  # a new poller: what a restart does
    assert len(spooled()) == 3


def test_a_restarted_daemon_fetches_nothing_twice(dovecot, entry, app_factory, pollers) -> None:
    box = entry()
    dovecot.append(box["username"], "INBOX", mails(2))
    first = app_factory(imap={"mailboxes": [box]})
    assert pollers(first).sync_once() == 2
    first.close()
    dovecot.append(box["username"], "INBOX", mails(1, "later"))
    again = app_factory(imap={"mailboxes": [box]})
    assert pollers(again).sync_once() == 1
    assert [uid_of(r) for r in spooled()] == [1, 2, 3]


def test_500_queued_messages_are_all_spooled_in_uid_order(
    dovecot, entry, app_factory, pollers
) -> None:
    box = entry()
    sent = mails(500)
    dovecot.append(box["username"], "INBOX", sent)
    app = app_factory(imap={"mailboxes": [box]})
    spooled_batches: list[int] = []
    poller = pollers(app, on_spooled=lambda: spooled_batches.append(1))

    assert poller.sync_once() == 500
    rows = spooled()
    assert [uid_of(r) for r in rows] == list(range(1, 501))
    assert [lf(r.raw) for r in rows] == [lf(m) for m in sent]
    assert len(spooled_batches) == 5  # one wake-up per committed batch of 100
    assert poller.sync_once() == 0
    assert all(SEEN in f for f in server_flags(dovecot, box["username"], "INBOX").values())


def test_mail_dropped_into_the_maildir_is_seen_at_once(
    dovecot, entry, app_factory, pollers
) -> None:
    box = entry()
    app = app_factory(imap={"mailboxes": [box]})
    poller = pollers(app)
    assert poller.sync_once() == 0  # selected and searched before the delivery
    dovecot.deliver(box["username"], make_mail())
    assert poller.sync_once() == 1  # NOOP first: a bare SEARCH would miss it for seconds


def test_oversized_message_is_quarantined_once_and_left_on_the_server(
    dovecot, entry, app_factory, pollers
) -> None:
    box = entry()
    big = make_mail(subject="huge", body="x\n" * 5000)
    dovecot.append(box["username"], "INBOX", [make_mail(), big, make_mail()])
    app = app_factory(imap={"mailboxes": [box]}, smtp_in={"max_message_bytes": 4096})
    poller = pollers(app)

    assert poller.sync_once() == 3
    rows = spooled()
    assert [r.status for r in rows] == ["pending", "quarantined", "pending"]
    assert "too large" in rows[1].last_error and "UID 2" in rows[1].last_error
    header = lf(rows[1].raw)
    assert b"Subject: huge" in header and b"x\nx\n" not in header
    assert poller.sync_once() == 0
    flags = server_flags(dovecot, box["username"], "INBOX")
    assert SEEN in flags[1] and SEEN not in flags[2] and SEEN in flags[3]


# -- faults -------------------------------------------------------------------------------------


def test_server_stopped_mid_fetch_loses_and_doubles_nothing(
    dovecot, entry, app_factory, any_db_url, pollers
) -> None:
    box = entry(batch_size=20)
    dovecot.append(box["username"], "INBOX", mails(60))
    app = app_factory(any_db_url, imap={"mailboxes": [box]})
    batches: list[int] = []

    def stop_server_after_first_batch() -> None:
        batches.append(len(spooled()))
        if len(batches) == 1:
            dovecot.stop()

    poller = pollers(app, on_spooled=stop_server_after_first_batch)
    try:
        with pytest.raises((IMAPClient.Error, OSError)):
            poller.sync_once()
        assert len(spooled()) == 20
    finally:
        dovecot.start()
    assert poller.sync_once() == 40
    rows = spooled()
    assert [uid_of(r) for r in rows] == list(range(1, 61))
    assert len({r.source_ref for r in rows}) == 60
    # The first batch's \Seen was lost with the connection and applied on the next pass.
    assert all(SEEN in f for f in server_flags(dovecot, box["username"], "INBOX").values())


def test_wrong_password_is_retried_with_backoff_and_other_mailboxes_keep_working(
    dovecot, entry, app_factory, imap_log
) -> None:
    good = entry(name="good")
    bad = entry(name="bad", password="wrong")
    dovecot.append(good["username"], "INBOX", mails(1))
    app = app_factory(imap={"mailboxes": [bad, good]})
    woken, stop = threading.Event(), threading.Event()
    threads = start_imap_threads(app, stop, woken.set)
    try:
        assert woken.wait(10), "the good mailbox was not read"
        failures = imap_log.wait_for("imap bad:", count=3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(t.is_alive() for t in threads)
    assert len(spooled()) == 1
    assert len(failures) >= 3
    reason = (
        f"imap bad: login as {bad['username']} at 127.0.0.1:{dovecot.port} refused: "
        "[AUTHENTICATIONFAILED] Authentication failed."
    )
    assert all(line.startswith(reason) for line in failures)
    assert [line.split("retrying in ")[1] for line in failures[:3]] == [
        "0.1 s (failure 1)",
        "0.2 s (failure 2)",
        "0.4 s (failure 3)",
    ]


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 5, 300) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert backoff_delay(10_000, 5, 300) == 300


def test_changed_uidvalidity_reads_the_folder_again(
    dovecot, entry, app_factory, pollers, imap_log
) -> None:
    box = entry(folders=["Support"])
    user = box["username"]
    first = mails(2)
    dovecot.append(user, "Support", first)
    app = app_factory(imap={"mailboxes": [box]})
    poller = pollers(app)
    assert poller.sync_once() == 2
    before = ImapState.get(ImapState.folder == "Support")

    with dovecot.client(user) as client:  # under the poller, whose session still has it selected
        client.delete_folder("Support")
        client.create_folder("Support")
    dovecot.append(user, "Support", [*first, make_mail(subject="new")])
    assert poller.sync_once() == 3

    after = ImapState.get(ImapState.folder == "Support")
    assert after.uidvalidity != before.uidvalidity and after.last_uid == 3
    assert imap_log.wait_for("UIDVALIDITY changed", timeout=0)
    refs = [r.source_ref for r in spooled()]
    assert refs[2:] == [f"support/Support/{after.uidvalidity}/{uid}" for uid in (1, 2, 3)]
    assert poller.sync_once() == 0


# -- waiting: IDLE and polling ------------------------------------------------------------------


def test_idle_wakes_the_poller_without_waiting_for_the_poll(
    dovecot, entry, app_factory, pollers
) -> None:
    box = entry(poll_seconds=600)
    app = app_factory(imap={"mailboxes": [box]})
    woken, stop = threading.Event(), threading.Event()
    poller = pollers(app, on_spooled=woken.set)
    thread = run_in_thread(poller, stop)
    try:
        assert poller.idling.wait(10), "the poller never entered IDLE"
        appended = time.monotonic()
        dovecot.append(box["username"], "INBOX", mails(1))
        assert woken.wait(10), "an APPEND during IDLE was not spooled"
        latency = time.monotonic() - appended
    finally:
        stopping = time.monotonic()
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - stopping < 3  # IDLE checks the stop event every second
    assert latency < 5  # far below poll_seconds: only IDLE can have woken it
    assert len(spooled()) == 1


def test_without_idle_the_folder_is_polled(dovecot, entry, app_factory, pollers) -> None:
    box = entry(idle=False, poll_seconds=0.2)
    app = app_factory(imap={"mailboxes": [box]})
    woken, stop = threading.Event(), threading.Event()
    poller = pollers(app, on_spooled=woken.set)
    thread = run_in_thread(poller, stop)
    try:
        dovecot.append(box["username"], "INBOX", mails(1))
        assert woken.wait(10)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and not poller.idling.is_set()
    assert len(spooled()) == 1


# -- the worker behind the spool ----------------------------------------------------------------


def test_appended_mail_becomes_tickets_and_unparseable_mail_is_quarantined_once(
    dovecot, entry, app_factory, pollers
) -> None:
    from maild.worker import make_worker

    box = entry(after="move:Processed")
    junk = b"this is not a mail message\r\n"
    dovecot.append(box["username"], "INBOX", [make_mail(subject="a"), junk, make_mail(subject="b")])
    app = app_factory(imap={"mailboxes": [box]})
    poller = pollers(app)
    worker = make_worker(app)

    assert poller.sync_once() == 3
    assert worker.run_once() == 3
    assert Ticket.select().count() == 2
    assert [r.status for r in spooled()] == ["done", "quarantined", "done"]
    assert poller.sync_once() == 0 and worker.run_once() == 0
    assert len(spooled()) == 3


def test_resynced_folder_makes_no_duplicate_tickets(dovecot, entry, app_factory, pollers) -> None:
    from maild.worker import make_worker

    box = entry(folders=["Support"])
    first = mails(2)
    dovecot.append(box["username"], "Support", first)
    app = app_factory(imap={"mailboxes": [box]})
    poller = pollers(app)
    worker = make_worker(app)
    assert poller.sync_once() == 2 and worker.run_once() == 2
    with dovecot.client(box["username"]) as client:
        client.delete_folder("Support")
        client.create_folder("Support")
    dovecot.append(box["username"], "Support", [*first, make_mail(subject="new")])
    assert poller.sync_once() == 3 and worker.run_once() == 3
    assert Ticket.select().count() == 3  # the two old messages are duplicates by Message-ID


# -- configuration ------------------------------------------------------------------------------

VALID = {
    "name": "support",
    "host": "imap.example.com",
    "username": "support@example.com",
    "password_env": "SUPPORT_IMAP_PASSWORD",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"password": "hunter2"},
            "imap.mailboxes[0].password: secrets are never inline: use password_env",
        ),
        ({"colour": "blue"}, "imap.mailboxes[0].colour: unknown key"),
        ({"port": "993"}, "imap.mailboxes[0].port: expected a whole number"),
        ({"host": None}, "imap.mailboxes[0].host: required"),
        ({"security": "ssl"}, "imap.mailboxes[0].security: must be one of tls, starttls, none"),
        (
            {"security": "none"},
            "imap.mailboxes[0].security: none (plain text) is allowed only for loopback hosts",
        ),
        (
            {"password_env": None},
            "imap.mailboxes[0].password_env: give exactly one of "
            "password_env, password_file or oauth2",
        ),
        (
            {"password_file": "pw"},
            "give exactly one of password_env, password_file or oauth2 "
            "(got password_env, password_file)",
        ),
        (
            {"password_env": None, "oauth2": {}},
            "imap.mailboxes[0].oauth2: give exactly one of token_file or token_command",
        ),
        ({"oauth2": {"token": "x"}}, "imap.mailboxes[0].oauth2.token: unknown key"),
        ({"after": "archive"}, "imap.mailboxes[0].after: must be seen, delete or move:FOLDER"),
        ({"after": "move:"}, "imap.mailboxes[0].after: must be seen, delete or move:FOLDER"),
        ({"after": "move:INBOX"}, "imap.mailboxes[0].after: cannot move to 'INBOX'"),
        ({"folders": []}, "imap.mailboxes[0].folders: give at least one folder"),
        ({"folders": "INBOX"}, "imap.mailboxes[0].folders: expected a list"),
        ({"poll_seconds": 0}, "imap.mailboxes[0].poll_seconds: must be greater than 0"),
        ({"idle_renew_seconds": 900}, "imap.mailboxes[0].idle_renew_seconds: at most 540"),
        ({"name": "sup port"}, "imap.mailboxes[0].name: 'sup port' must be letters"),
    ],
)
def test_mailbox_config_errors_name_the_file_and_key(change: dict, message: str) -> None:
    item = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        parse_mailboxes([item], Path("/etc/ticketd/config.yaml"))
    assert str(info.value).startswith("/etc/ticketd/config.yaml: ")
    assert message in str(info.value)


def test_mailbox_config_defaults_and_resolution() -> None:
    item = {
        **VALID,
        "password_env": None,
        "password_file": "imap-password",
        "after": "move:Done/Tickets",
        "folders": ["INBOX", "Support"],
    }
    del item["password_env"]
    (mailbox,) = parse_mailboxes([item], Path("/etc/ticketd/config.yaml"))
    assert mailbox.port == 993 and mailbox.security == "tls"
    assert mailbox.password_file == Path("/etc/ticketd/imap-password")
    assert mailbox.after_action == "move" and mailbox.move_to == "Done/Tickets"
    assert mailbox.folders == ("INBOX", "Support")
    starttls = parse_mailboxes([{**VALID, "security": "starttls"}], Path("c.yaml"))[0]
    assert starttls.port == 143
    local = parse_mailboxes([{**VALID, "host": "::1", "security": "none"}], Path("c.yaml"))[0]
    assert local.security == "none"


def test_duplicate_mailbox_names_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"imap.mailboxes\[1\].name: 'support' is used by"):
        parse_mailboxes([VALID, VALID], Path("config.yaml"))


def test_config_errors_carry_the_line_number(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "instance: {support_addresses: [support@example.com]}\n"
        "imap:\n"
        "  mailboxes:\n"
        "    - name: support\n"
        "      host: imap.example.com\n"
        "      username: support@example.com\n"
        "      password: hunter2\n",
        encoding="utf-8",
    )
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"config.yaml:7: imap.mailboxes\[0\].password: "):
        parse_mailboxes(config.imap.mailboxes, config.source)


# -- ticketd imap check -------------------------------------------------------------------------


def write_config(tmp_path: Path, *mailboxes: dict[str, Any]) -> Path:
    data = base_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}",
        imap={"mailboxes": list(mailboxes)},
    )
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path


def test_imap_check_reports_folders_capabilities_and_counts(
    dovecot, entry, tmp_path, capsys
) -> None:
    box = entry(after="move:Processed")
    dovecot.append(box["username"], "INBOX", mails(2))
    assert main(["imap", "check", "--config", str(write_config(tmp_path, box))]) == 0
    out = capsys.readouterr().out
    assert f"support: OK, {box['username']} at 127.0.0.1:{dovecot.port} (none)" in out
    assert "capabilities: IDLE yes, MOVE yes, UIDPLUS yes" in out
    assert "folders: INBOX" in out
    assert "INBOX: messages 2, unseen 2, UIDVALIDITY" in out and "not read yet" in out
    assert "after: move to Processed (will be created)" in out


def test_imap_check_fails_with_the_reason_per_mailbox(dovecot, entry, tmp_path, capsys) -> None:
    good = entry(name="good")
    bad = entry(name="bad", password="wrong")
    assert main(["imap", "check", "--config", str(write_config(tmp_path, good, bad))]) == 1
    captured = capsys.readouterr()
    assert "good: OK" in captured.out
    assert (
        f"bad: FAILED: login as {bad['username']} at 127.0.0.1:{dovecot.port} refused: "
        "[AUTHENTICATIONFAILED] Authentication failed."
    ) in captured.err


# -- security and credentials -------------------------------------------------------------------


def test_tls_and_starttls_verify_the_server_certificate(dovecot, entry, app_factory) -> None:
    if dovecot.ca_file is None:
        missing("the openssl tool is needed to make the test server's certificate")
    user = dovecot.add_user()
    ca = str(dovecot.ca_file)
    tls = entry(user, name="tls", security="tls", port=dovecot.tls_port, ca_file=ca)
    starttls = entry(user, name="starttls", security="starttls", ca_file=ca)
    untrusted = entry(user, name="untrusted", security="tls", port=dovecot.tls_port)
    app = app_factory(imap={"mailboxes": [tls, starttls, untrusted]})
    out, err = io.StringIO(), io.StringIO()
    assert check(app, out, err) == 1
    assert f"tls: OK, {user} at 127.0.0.1:{dovecot.tls_port} (tls)" in out.getvalue()
    assert f"starttls: OK, {user} at 127.0.0.1:{dovecot.port} (starttls)" in out.getvalue()
    assert err.getvalue().startswith(
        f"untrusted: FAILED: cannot connect to 127.0.0.1:{dovecot.tls_port}: "
    )
    assert "certificate verify failed" in err.getvalue()


def test_oauth2_token_comes_from_a_command_on_every_login(dovecot, entry, app_factory) -> None:
    user = dovecot.add_user()
    token_ok = entry(user, name="token", password_file=None, oauth2={"token_command": "echo tok"})
    no_token = entry(
        user,
        name="broken",
        password_file=None,
        oauth2={"token_command": "sh -c 'echo expired >&2; exit 3'"},
    )
    app = app_factory(imap={"mailboxes": [token_ok, no_token]})
    out, err = io.StringIO(), io.StringIO()
    assert check(app, out, err) == 1
    lines = err.getvalue().splitlines()
    # This Dovecot offers no XOAUTH2: the token was sent and the server said no.
    assert lines[0].startswith(
        f"token: FAILED: login as {user} at 127.0.0.1:{dovecot.port} refused: "
    )
    assert lines[1] == "broken: FAILED: oauth2.token_command gave no token: expired"
