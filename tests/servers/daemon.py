"""Run ``ticketd run`` as a real subprocess on a free loopback port, with a readiness check."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, *, timeout: float = 20.0, proc: subprocess.Popen | None = None
) -> None:
    """Return once something accepts TCP connections on ``port``; fail if ``proc`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def http_port(config: Path) -> int | None:
    """The HTTP port of a config file when its ``http.enabled`` is true, else None."""
    from maild.config import load_config

    http = load_config(config).http
    return http.port if http.enabled else None


class DaemonProcess:
    """``ticketd run --config CONFIG`` as a child process; ``start``/``stop``/``kill``.

    Ready means the SMTP port accepts connections and, when the config enables ``http``, the
    HTTP port too.
    """

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.http_port: int | None = None

    def start(self) -> DaemonProcess:
        self.http_port = http_port(self.config)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "maild.cli.main", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_for_port(self.port, proc=self.proc)
        if self.http_port:
            wait_for_port(self.http_port, proc=self.proc)
        return self

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")
