"""The HTTP server: errors without stack traces, body caps, static files, headers, client address.

In-process servers (``WebServer`` on a free port, with the probe routes of
tests/servers/web_probe.py) and the daemon subprocess, both spoken to with urllib.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from maild.app import App
from maild.web.server import ROUTE_MODULES, WebServer
from tests.servers.daemon import free_port
from tests.servers.web import WebDaemon, request

PROBE = "tests.servers.web_probe"


@pytest.fixture
def serve(app_factory: Callable[..., App]) -> Iterator[Callable[..., str]]:
    servers: list[WebServer] = []

    def start(**http: object) -> str:
        port = free_port()
        app = app_factory(http={"enabled": True, "port": port, **http})
        server = WebServer(app, modules=(*ROUTE_MODULES, PROBE))
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.stop()


def test_every_answer_has_the_security_headers(serve: Callable[..., str]) -> None:
    base = serve()
    for path in ("/", "/no/such/page", "/static/ticketd.css"):
        answer = request(base + path)
        csp = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp  # default-src 'none'
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert "aiohttp" not in answer.headers.get("Server", "")


def test_an_exception_answers_500_without_a_stack_trace(serve: Callable[..., str]) -> None:
    base = serve()
    page = request(base + "/probe/boom")
    assert page.status == 500
    assert page.headers["Content-Type"].startswith("text/html")
    for leak in ("Traceback", "RuntimeError", "/etc/ticketd", "secret"):
        assert leak not in page.text
    as_json = request(base + "/probe/boom", headers={"Accept": "application/json"})
    assert as_json.status == 500
    assert set(as_json.json()) == {"error"}


def test_unknown_paths_are_a_plain_404_page_or_json_under_api(serve: Callable[..., str]) -> None:
    base = serve()
    page = request(base + "/nope")
    assert page.status == 404 and "<html" in page.text and "404: Not Found" not in page.text
    api = request(base + "/api/v1/nope")
    assert api.status == 404 and api.json() == {"error": "There is no such page."}


def test_static_files_are_served_but_folders_are_not_listed(serve: Callable[..., str]) -> None:
    base = serve()
    css = request(base + "/static/ticketd.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert request(base + "/static/").status in (403, 404)
    assert request(base + "/static/..%2f..%2fconfig.py").status in (403, 404)
    assert request(base + "/static/../server.py").status in (403, 404)


def test_a_body_over_the_cap_is_413_before_and_while_reading(serve: Callable[..., str]) -> None:
    base = serve(max_body_bytes=4096)
    assert request(base + "/probe/echo", b"x" * 4096, method="POST").json() == {"bytes": 4096}
    too_big = request(base + "/probe/echo", b"x" * 5000, method="POST")
    assert too_big.status == 413 and "Traceback" not in too_big.text
    # Chunked, without a Content-Length: aiohttp stops reading at the cap.
    chunks = iter([b"x" * 3000, b"x" * 3000])
    chunked = request(
        base + "/probe/echo",
        chunks,  # type: ignore[arg-type]
        method="POST",
        headers={"Transfer-Encoding": "chunked"},
    )
    assert chunked.status == 413


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    serve: Callable[..., str],
) -> None:
    untrusted = serve()
    spoof = {"X-Forwarded-For": "198.51.100.7"}
    assert request(untrusted + "/probe/ip", headers=spoof).json() == {"ip": "127.0.0.1"}
    trusted = serve(trusted_proxies=["127.0.0.1"])
    assert request(trusted + "/probe/ip", headers=spoof).json() == {"ip": "198.51.100.7"}


def test_the_daemon_serves_http_once_ready_and_stops_cleanly(tmp_path) -> None:
    daemon = WebDaemon(tmp_path).start()
    try:
        home = daemon.get("/")
        assert home.status == 200 and "Test Support" in home.text
        assert "<script" not in home.text
    finally:
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.process.output()


def test_a_taken_http_port_is_a_config_error_exit_78(tmp_path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        daemon = WebDaemon(tmp_path, http={"port": taken.getsockname()[1]})
        out = daemon.ticketd("run")
    assert out.returncode == 78
    assert "http: cannot listen" in out.stderr and "Traceback" not in out.stderr
