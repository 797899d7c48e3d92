"""``ticketd run``: SMTP and HTTP intake, IMAP pollers, the worker, the outbox sender and jobs.

The worker runs in its own process (:mod:`maild.workerproc`), so SMTP keeps answering at full speed
while it is busy; intake wakes it as soon as a message is spooled. The main thread supervises: a
worker process that dies is restarted (and logged), and systemd's watchdog is told all is well only
while the worker and every thread are alive. SIGTERM/SIGINT stop intake first, let the worker
finish the batch in hand (or leave it in the spool), then stop the other threads; SIGHUP reloads
the rules here and in the worker.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

from maild import spool
from maild.app import App
from maild.intake.imap import parse_mailboxes, start_imap_threads
from maild.jobs.runner import Jobs
from maild.kb.holder import KbHolder
from maild.ops.heartbeat import WorkerBeat, forget, forget_dead_workers
from maild.outbox.sender import start_sender_thread
from maild.routing.reload import RulesHolder
from maild.webhooks.sender import load_targets, start_webhook_thread
from maild.workerproc import WorkerProcess

log = logging.getLogger("ticketd")
RULES_CHECK_SECONDS = 1.0  # how often the rules folder is checked for changes


class Daemon:
    def __init__(self, app: App) -> None:
        self.app = app
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.reload = threading.Event()
        self.outbox_wake = threading.Event()  # the worker queued mail: send it now
        self.webhook_wake = threading.Event()  # the worker wrote events: tell the webhooks
        self.worker = WorkerProcess(app.db, str(app.config.source), self.on_work)
        self.threads: list[threading.Thread] = []
        self.stoppers: list[Callable[[], None]] = []
        # Named threads whose death means the daemon is broken (the systemd watchdog stops).
        self.parts: dict[str, Callable[[], bool]] = {}
        self.beat = WorkerBeat(app.db)
        self.watchdog = Watchdog()
        # Broken rules or IMAP settings are config errors (exit 78, file:line in the message),
        # reported before anything listens.
        self.rules = RulesHolder.open(app.config.rules_dir, app.config.templates_dir)
        self.kb = KbHolder(app.db, app.config.kb_dir)
        parse_mailboxes(app.config.imap.mailboxes, app.config.source)
        # A hook or channel with a missing secret or a refused URL stops the start (exit 78).
        self.webhook_targets = load_targets(app.config)
        if app.config.http.enabled:
            from maild.web.ratelimit import check_rates

            check_rates(app.config.http)

    def request_stop(self, *_args: object) -> None:
        self.stop.set()
        self.wake.set()
        self.outbox_wake.set()
        self.webhook_wake.set()

    def request_reload(self, *_args: object) -> None:
        self.reload.set()
        self.wake.set()

    def on_work(self) -> None:
        """The worker process stored something: the senders may have mail and events."""
        self.outbox_wake.set()
        self.webhook_wake.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def start(self) -> None:
        """Start intake and background threads (everything but the worker loop)."""
        app = self.app
        self.kb_reload()  # the articles indexed before the pages and the worker use them
        released = spool.release_dead_claims(app.db)
        if released:
            log.info("released %d spool claims left by stopped processes", released)
        forget_dead_workers(app.db)
        if app.config.smtp_in.enabled:
            from maild.intake.smtp import IntakeController

            controller = IntakeController(app, on_spooled=lambda _id: self.worker.wake())
            controller.start()
            self.stoppers.append(controller.stop)
            self.parts["smtp"] = lambda: bool(
                controller._thread is not None and controller._thread.is_alive()
            )
            log.info(
                "SMTP intake listening on %s:%s", app.config.smtp_in.host, app.config.smtp_in.port
            )
        if app.config.http.enabled:
            from maild.web.server import WebServer

            web = WebServer(app, wake=self.worker.wake, rules=self.rules)
            web.start()
            self.stoppers.append(web.stop)
            self.parts["http"] = lambda: bool(web.thread is not None and web.thread.is_alive())
        self.threads.extend(start_imap_threads(app, self.stop, self.worker.wake))
        self.threads.extend(start_sender_thread(app, self.stop, self.outbox_wake))
        self.threads.extend(
            start_webhook_thread(app, self.webhook_targets, self.stop, self.webhook_wake)
        )
        self.threads.extend(self.jobs().start(self.stop))
        for thread in self.threads:
            self.parts[thread.name] = thread.is_alive

    def dead_parts(self) -> list[str]:
        """The parts whose thread has stopped (empty while everything runs)."""
        return [name for name, alive in self.parts.items() if not alive()]

    def alive(self) -> None:
        """One turn of the worker loop: heartbeat in the database, WATCHDOG=1 if all is well."""
        self.beat.tick(self.app.clock.now())
        dead = self.dead_parts()
        if dead:
            self.watchdog.withhold(dead)
        else:
            self.watchdog.pet()

    def run(self) -> int:
        self.start()
        self.worker.start()
        self.parts["worker"] = self.worker.alive
        poll = min(self.app.config.worker.poll_seconds, RULES_CHECK_SECONDS)
        sd_notify("READY=1")
        log.info("ticketd ready (pid %s)", os.getpid())
        try:
            while not self.stop.is_set():
                self.wake.clear()
                self.worker.supervise()
                self.alive()  # the loop turns: a database outage shows in health, not here
                if self.reload.is_set():
                    self.reload.clear()
                    self.on_reload()
                else:
                    self.rules.maybe_reload()
                    self.kb_reload()
                self.wake.wait(poll)
        finally:
            sd_notify("STOPPING=1")
            forget(self.app.db, self.beat.name)
            self.shutdown()
        return 0

    def jobs(self) -> Jobs:
        """The periodic jobs of this installation."""
        from maild.jobs.retention import schedule_retention
        from maild.reports.digest import schedule_digest
        from maild.sla.sweep import schedule_jobs
        from maild.triage.job import schedule_retrain

        jobs = Jobs(self.app)
        schedule_jobs(self.app, self.rules, jobs)  # SLA, escalations, lifecycle: 1/min
        schedule_digest(self.app, jobs.scheduler, rules=self.rules)  # off unless configured
        schedule_retention(self.app, jobs)  # hourly: processed spool and sent outbox rows
        schedule_retrain(self.app, jobs)  # off unless triage.retrain_days
        return jobs

    def on_reload(self) -> None:
        log.info("SIGHUP: reloading the rules and the knowledge base")
        self.rules.maybe_reload(force=True)
        self.kb_reload(force=True)
        self.worker.signal(signal.SIGHUP)

    def kb_reload(self, *, force: bool = False) -> None:
        try:
            self.kb.maybe_reload(force=force)
        except Exception:  # a database outage: logged; tried again at the next turn
            log.exception("kb: re-indexing %s failed", self.app.config.kb_dir)

    def shutdown(self) -> None:
        self.stop.set()
        for stopper in self.stoppers:  # intake first: nothing new is accepted
            try:
                stopper()
            except Exception:
                log.exception("error while stopping")
        self.worker.stop()  # the batch in hand finishes or stays in the spool
        self.on_work()  # the senders send what the last batch queued, then stop
        for thread in self.threads:
            thread.join(timeout=10)
        self.app.close()
        log.info("ticketd stopped")


class Watchdog:
    """systemd's watchdog (``WatchdogSec=``): WATCHDOG=1 at half the interval systemd asks for
    (``$WATCHDOG_USEC``), and only while every part is alive; a no-op outside systemd."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.interval = int(usec) / 2e6 if wanted else None
        self.last = 0.0
        self.reported: tuple[str, ...] = ()

    def pet(self) -> None:
        self.reported = ()
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            sd_notify("WATCHDOG=1")

    def withhold(self, dead: list[str]) -> None:
        if tuple(dead) != self.reported:
            self.reported = tuple(dead)
            log.error("not alive: %s; the watchdog is no longer told all is well", ", ".join(dead))


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)  # a listener that stopped reading must not stall the worker
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify failed: %s", exc)
