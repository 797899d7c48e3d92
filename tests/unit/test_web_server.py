"""The HTTP server's pure parts: whose X-Forwarded-For is believed, and the http config checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.config import config_from_dict
from maild.errors import ConfigError
from maild.web.middleware import forwarded_for, parse_networks
from tests.conftest import base_config

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8"])


def test_forwarded_for_is_ignored_from_an_untrusted_peer() -> None:
    assert forwarded_for("203.0.113.9", "198.51.100.1", PROXIES) == "203.0.113.9"


def test_forwarded_for_is_ignored_when_no_proxy_is_trusted() -> None:
    assert forwarded_for("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


def test_forwarded_for_takes_the_rightmost_untrusted_hop_from_a_trusted_proxy() -> None:
    # The client may send its own X-Forwarded-For: only the hop our proxies added is believed.
    header = "6.6.6.6, 198.51.100.7, 10.1.2.3"
    assert forwarded_for("127.0.0.1", header, PROXIES) == "198.51.100.7"


def test_forwarded_for_garbage_keeps_the_peer() -> None:
    assert forwarded_for("127.0.0.1", "not-an-ip", PROXIES) == "127.0.0.1"
    assert forwarded_for("127.0.0.1", "", PROXIES) == "127.0.0.1"


def _config(tmp_path: Path, **http: object):
    data = base_config(tmp_path, "sqlite:///x.db", http=http)
    return config_from_dict(data, base_dir=tmp_path)


def test_http_config_defaults_are_off_on_loopback(tmp_path: Path) -> None:
    http = _config(tmp_path).http
    assert (http.enabled, http.host, http.port, http.link_days) == (False, "127.0.0.1", 8025, 90)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("port", 70000, "http.port"),
        ("trusted_proxies", ["nope"], "http.trusted_proxies[0]"),
        ("public_url", "ftp://x", "http.public_url"),
        ("link_days", 0, "http.link_days"),
        ("max_body_bytes", 10, "http.max_body_bytes"),
    ],
)
def test_http_config_errors_name_the_key(
    tmp_path: Path, key: str, value: object, words: str
) -> None:
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        _config(tmp_path, **{key: value})


def test_shipped_config_enables_http_on_loopback_8025() -> None:
    from maild.config import load_config

    http = load_config(Path(__file__).resolve().parents[2] / "config.yaml").http
    assert (http.enabled, http.host, http.port) == (True, "127.0.0.1", 8025)


def test_a_rate_that_does_not_parse_is_a_config_error_naming_its_key() -> None:
    import pytest

    from maild.config import HttpConfig
    from maild.errors import ConfigError
    from maild.web.ratelimit import check_rates

    with pytest.raises(ConfigError, match=r"http\.lookup_rate: 'lots' is not a rate"):
        check_rates(HttpConfig(lookup_rate="lots"))
    check_rates(HttpConfig())  # the defaults parse


def test_a_slack_channel_and_an_api_channel_cannot_share_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maild.web.api import load_channels

    monkeypatch.setenv("TICKETD_TEST_CHAT_TOKEN", "chat-token-0123456789abcdef")
    channels = [
        {"name": "chat", "kind": "slack", "signing_secret_env": "X", "bot_token_env": "Y"},
        {"name": "chat", "token_env": "TICKETD_TEST_CHAT_TOKEN"},
    ]
    config = config_from_dict(
        base_config(tmp_path, f"sqlite:///{tmp_path}/t.db", http={"channels": channels}),
        base_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match=r"http.channels\[1\].name: 'chat' is used twice"):
        load_channels(config)
