"""A private Dovecot IMAP server for tests: its own config in a temp dir, one free loopback port.

Dovecot runs in the foreground (``dovecot -F``) as a child of the test process, with Maildir storage
and one passwd-file per user. The temp dir is 0755 because Dovecot's auth process runs as the
``dovecot`` user and must read those files; mail homes belong to ``nobody``. Readiness is the
server's greeting on the port, never a fixed sleep."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from imapclient import IMAPClient

from tests.servers.daemon import free_port

HOST = "127.0.0.1"

# With a certificate, port ``port`` also offers STARTTLS and ``tls_port`` speaks implicit TLS.
SSL_ON = """\
ssl = yes
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem"""

CONFIG_TEMPLATE = """\
# Standalone Dovecot 2.3 for loopback tests: dovecot -F -c {base}/dovecot.conf
protocols = imap
listen = {host}
base_dir = {base}/run
instance_name = {name}
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password is answered at once, so failure tests stay quick.
auth_failure_delay = 0
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  # One file per user: a file named by variables is read on first use, so users added while
  # the server runs can log in at once (a single file is re-read only after a few seconds).
  args = scheme=PLAIN username_format=%u {base}/users/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
# No growing per-IP penalty (2, 4, 8 s ...) for the failed logins that tests make on purpose.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
  }}
}}
"""


def available() -> bool:
    """True when this machine can run the test server (the binary, root, a ``nobody`` user)."""
    if shutil.which("dovecot") is None or os.geteuid() != 0:
        return False
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return False
    return True


class Dovecot:
    """One Dovecot instance. ``start()``/``stop()`` may be repeated; the port and mail stay."""

    host = HOST

    def __init__(self, *, port: int | None = None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ticketd-dovecot-"))
        self.base.chmod(0o755)  # the auth process (user dovecot) must reach BASE/users
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.passwords: dict[str, str] = {}
        nobody = pwd.getpwnam("nobody")
        self._uid, self._gid = nobody.pw_uid, nobody.pw_gid
        (self.base / "run").mkdir()
        (self.base / "home").mkdir()
        (self.base / "users").mkdir()
        self.ca_file: Path | None = self._make_certificate()
        self.tls_port = free_port() if self.ca_file else 0
        self.config_path = self.base / "dovecot.conf"
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                base=self.base,
                host=HOST,
                port=self.port,
                tls_port=self.tls_port,
                ssl=SSL_ON.format(base=self.base) if self.ca_file else "ssl = no",
                uid=self._uid,
                gid=self._gid,
                name=f"ticketd-test-{self.port}",
            ),
            encoding="utf-8",
        )

    def _make_certificate(self) -> Path | None:
        """A self-signed certificate for 127.0.0.1 (None without the openssl tool)."""
        if shutil.which("openssl") is None:
            return None
        cert = self.base / "cert.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                f"subjectAltName=IP:{HOST},DNS:localhost",
                "-keyout",
                str(self.base / "key.pem"),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        return cert

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        """Start the server and return once it greets a client on its port."""
        if self.running:
            return
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # one process group: stop() reaches the session processes
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(
                    f"dovecot exited with {self.process.returncode}: "
                    f"{stderr.decode(errors='replace').strip()}\n{self.log_tail()}"
                )
            if self._greets():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not greet on port {self.port}\n{self.log_tail()}")
            time.sleep(0.02)  # polling a socket for readiness, not waiting for work

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and every session process, and wait until the master has exited.

        Dovecot's session processes outlive a terminated master (they keep serving their clients),
        so the whole process group is signalled: clients see their connections drop.
        """
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a stuck master, and the stragglers it left
        process.wait(timeout)
        if process.stderr:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the temp dir."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _greets(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=2) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.base / "dovecot.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- users and mail -------------------------------------------------------------------

    def add_user(self, name: str | None = None, password: str = "secret") -> str:
        """Create a user with a Maildir home; return the user name (a fresh one when not given)."""
        name = name or f"user-{uuid.uuid4().hex[:10]}"
        home = self.base / "home" / name
        home.mkdir(exist_ok=True)
        os.chown(home, self._uid, self._gid)
        self.passwords[name] = password
        self._write_user(name, password)
        return name

    def _write_user(self, name: str, password: str) -> None:
        path = self.base / "users" / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(f"{name}:{{PLAIN}}{password}\n", encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(path)

    def client(self, user: str) -> IMAPClient:
        """A logged-in client for ``user`` (the caller logs out)."""
        client = IMAPClient(HOST, port=self.port, ssl=False, timeout=10)
        client.login(user, self.passwords[user])
        return client

    def append(self, user: str, folder: str, messages: list[bytes]) -> None:
        """APPEND ``messages`` to ``folder`` (created when missing), in order, in one command."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.multiappend(folder, messages)

    def deliver(self, user: str, raw: bytes) -> Path:
        """Drop a message into the user's INBOX as a local delivery agent does (Maildir/new)."""
        maildir = self.base / "home" / user / "Maildir"
        for sub in ("", "new", "cur", "tmp"):
            folder = maildir / sub
            if not folder.exists():
                folder.mkdir()
                os.chown(folder, self._uid, self._gid)
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.ticketd-test"
        tmp = maildir / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self._uid, self._gid)
        return tmp.replace(maildir / "new" / name)
