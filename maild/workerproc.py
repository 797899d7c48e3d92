"""The worker in its own process, so that SMTP intake never waits for processing.

``ticketd run`` starts ``python -m maild.workerproc`` with two pipes: intake writes a byte to the
*wake* pipe when it spools a message (never blocking: a full pipe already says "work"), and the
worker writes to the *report* pipe once per loop turn (``.``: alive) and after a pass that did
work (``!``: the outbox and webhook senders have something new). :class:`WorkerProcess` is the
parent's side: it starts the child, restarts it when it dies (logged), forwards SIGHUP, and stops
it with SIGTERM; the child finishes the batch in hand and exits. A child whose parent is gone
(the wake pipe reads end-of-file) stops too. Exactly-once does not rest on any of this: a row is
marked done in the transaction that stores its message (:mod:`maild.worker`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from peewee import Database

from maild import spool

log = logging.getLogger("ticketd")

ALIVE, DID_WORK = b".", b"!"
STALE_SECONDS = 120.0  # a child silent for this long counts as hung (the watchdog is withheld)
RESTART_DELAY = 1.0  # wait before restarting a child that died (no busy crash loop)
STOP_SECONDS = 30.0  # after SIGTERM, the child has this long to finish its batch
RELEASE_SECONDS = 5.0  # how often claims of dead processes are released (an orphan that died)


class WorkerProcess:
    """The parent's handle on the worker process: start, supervise, wake, stop."""

    def __init__(self, db: Database, config_path: str, on_work: Callable[[], None]) -> None:
        self.db = db
        self.config_path = config_path
        self.on_work = on_work
        self.proc: subprocess.Popen | None = None
        self.wake_w: int | None = None
        self.last_report = time.monotonic()
        self.restarts = 0
        self.stopping = False
        self.released_at = time.monotonic()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        wake_r, wake_w = os.pipe()
        report_r, report_w = os.pipe()
        os.set_blocking(wake_w, False)
        cmd = [
            sys.executable,
            "-m",
            "maild.workerproc",
            "--config",
            self.config_path,
            "--wake-fd",
            str(wake_r),
            "--report-fd",
            str(report_w),
        ]
        proc = subprocess.Popen(cmd, pass_fds=(wake_r, report_w))
        os.close(wake_r)
        os.close(report_w)
        with self._lock:
            old, self.wake_w = self.wake_w, wake_w
            self.proc = proc
        if old is not None:
            os.close(old)
        self.last_report = time.monotonic()
        self._reader = threading.Thread(
            target=self._read, args=(report_r,), name="worker-reports", daemon=True
        )
        self._reader.start()
        log.info("worker process started (pid %s)", proc.pid)

    def _read(self, fd: int) -> None:
        try:
            while True:
                data = os.read(fd, 4096)
                if not data:
                    return
                self.last_report = time.monotonic()
                if DID_WORK in data:
                    self.on_work()
        finally:
            os.close(fd)

    def wake(self) -> None:
        """Tell the worker a message is waiting; never blocks the caller."""
        fd = self.wake_w
        if fd is None:
            return
        # A full pipe already wakes it; a dead child is restarted.
        with contextlib.suppress(OSError):
            os.write(fd, b"w")

    def alive(self) -> bool:
        proc = self.proc
        return (
            proc is not None
            and proc.poll() is None
            and time.monotonic() - self.last_report < STALE_SECONDS
        )

    def supervise(self) -> None:
        """Restart the child if it died (called by the daemon's loop); every few seconds, free
        the claims of dead processes (a worker orphaned by a killed daemon, then gone)."""
        proc = self.proc
        if self.stopping or proc is None:
            return
        if proc.poll() is None:
            if time.monotonic() - self.released_at >= RELEASE_SECONDS:
                self.release()
            return
        log.error(
            "worker process %s exited with status %s; restarting it", proc.pid, proc.returncode
        )
        time.sleep(RESTART_DELAY)
        self.release()
        self.restarts += 1
        self.start()

    def release(self) -> None:
        self.released_at = time.monotonic()
        try:
            released = spool.release_dead_claims(self.db)
        except Exception as exc:  # a database outage: the next turn tries again
            log.warning("cannot release dead claims: %s", exc)
            return
        if released:
            log.info("released %d spool claims of dead worker processes", released)

    def signal(self, signum: int) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    def stop(self) -> None:
        self.stopping = True
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                log.error("worker process %s did not stop in %ss; killed", proc.pid, STOP_SECONDS)
                proc.kill()
                proc.wait()
        if self.wake_w is not None:
            os.close(self.wake_w)
            self.wake_w = None


def child_main(argv: list[str] | None = None) -> int:
    """The worker process: claim and process spool rows until SIGTERM or the parent is gone."""
    parser = argparse.ArgumentParser(prog="maild.workerproc")
    parser.add_argument("--config", required=True)
    parser.add_argument("--wake-fd", type=int, required=True)
    parser.add_argument("--report-fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s [worker] %(name)s: %(message)s",  # whose line it is
    )
    from maild.app import App
    from maild.config import load_config
    from maild.routing.reload import RulesHolder
    from maild.worker import make_worker

    config = load_config(args.config)
    logging.getLogger().setLevel(config.log_level.upper())
    stop = threading.Event()
    reload = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    app = App.open(config)
    rules = RulesHolder.open(config.rules_dir, config.templates_dir)
    worker = make_worker(app, rules)
    wake, report = args.wake_fd, args.report_fd
    os.set_blocking(wake, False)
    poll = min(config.worker.poll_seconds, 1.0)
    try:
        while not stop.is_set():
            try:
                did = worker.run_once(limit=500, stop=stop)
            except Exception:  # a database outage: log, wait, try again
                log.exception("worker pass failed")
                did = 0
            try:
                os.write(report, DID_WORK if did else ALIVE)
            except BrokenPipeError:
                return 0  # the parent is gone
            if reload.is_set():
                reload.clear()
                rules.maybe_reload(force=True)
            else:
                rules.maybe_reload()
            if did:
                continue  # more may have arrived meanwhile
            try:
                ready, _, _ = select.select([wake], [], [], poll)
            except InterruptedError:
                continue
            if ready:
                with contextlib.suppress(BlockingIOError):
                    if not os.read(wake, 65536):
                        return 0  # end of file: the parent is gone
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
