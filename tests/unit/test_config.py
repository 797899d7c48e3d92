"""config.yaml loading: defaults, path resolution, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from maild.config import load_config, read_secret
from maild.config_schema import SLOW, parse_fast
from maild.errors import ConfigError

MINIMAL = "instance:\n  ticket_prefix: ACME\n  support_addresses: [support@example.com]\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_shipped_config_loads() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "config.yaml")
    assert config.prefix == "ACME"
    assert config.smtp_in.port == 2525 and config.smtp_in.host == "127.0.0.1"
    assert config.smtp_out.transport == "file"
    assert config.database.url.startswith("sqlite:///")


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "rules_dir: ./my-rules\n"))
    assert config.rules_dir == tmp_path / "my-rules"
    assert config.instance.data_dir == tmp_path / "var"
    assert config.smtp_out.directory == tmp_path / "var" / "sent"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("smtp_in:\n  port: abc\n", "config.yaml:5: smtp_in.port: expected a whole number"),
        ("smtp_in:\n  prot: 25\n", "config.yaml:5: smtp_in.prot: unknown key"),
        ("smtp_out:\n  transport: carrier-pigeon\n", "smtp_out.transport: must be one of"),
        ("smtp_out:\n  password: hunter2\n", "smtp_out.password: unknown key"),
        ("smtp_in:\n  enabled: maybe\n", "smtp_in.enabled: expected true or false"),
        ("bogus: 1\n", "config.yaml:4: bogus: unknown key"),
    ],
)
def test_errors_name_file_line_and_key_path(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + extra))
    assert message in str(info.value)


def test_missing_support_addresses_and_bad_prefix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="support_addresses: at least one"):
        load_config(write(tmp_path, "instance: {ticket_prefix: ACME}\n"))
    with pytest.raises(ConfigError, match="ticket_prefix"):
        load_config(write(tmp_path, MINIMAL.replace("ACME", "acme-1")))
    with pytest.raises(ConfigError, match="without \\+tag"):
        load_config(write(tmp_path, MINIMAL.replace("support@", "support+x@")))


def test_yaml_syntax_and_duplicate_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.yaml:2: invalid YAML"):
        load_config(write(tmp_path, "instance:\n  bad: : value: [\n  x: 1\n"))
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, MINIMAL + "smtp_in: {}\nsmtp_in: {}\n"))


def lines_of(data: object) -> object:
    """The data with ruamel's line records: what error messages (file:line) are made from."""
    if isinstance(data, dict):
        return {k: (data.lc.key(k), lines_of(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [(data.lc.item(i), lines_of(v)) for i, v in enumerate(data)]
    return data


SHIPPED = (Path(__file__).resolve().parents[2] / "config.yaml").read_text()
MAILBOXES = MINIMAL + (
    "imap:\n  mailboxes:\n    - {name: inbox, host: imap.example.com, port: 993}\n"
    "    - name: second\n      folders: [INBOX, 'Support']\n      verify: NO\n"
    "http: {dashboard_users: {alice: 'x'}, trusted_proxies: [10.0.0.0/8], link_days: 1.5e1}\n"
)


@pytest.mark.parametrize("text", [SHIPPED, MAILBOXES], ids=["shipped", "mailboxes"])
def test_the_fast_reader_gives_what_the_round_trip_loader_gives(text: str) -> None:
    fast = parse_fast(text)
    assert fast is not SLOW  # read by the C parser
    slow = YAML(typ="rt").load(text)
    assert fast == slow
    assert lines_of(fast) == lines_of(slow)


@pytest.mark.parametrize(
    "extra",
    [
        "smtp_in: &in {port: 2626}\nsmtp_out: {port: *in}\n",  # anchors and aliases
        "base: &b {port: 2626}\n",  # an anchor alone
        "smtp_in:\n  <<: {port: 2626}\n",  # a merge key
        "smtp_in: !!map {port: 2626}\n",  # a tag
    ],
)
def test_yaml_the_fast_reader_refuses_is_read_as_before(tmp_path: Path, extra: str) -> None:
    assert parse_fast(MINIMAL + extra) is SLOW
    text = MINIMAL + extra
    if "base:" in text:
        with pytest.raises(ConfigError, match=r"config\.yaml:4: base: unknown key"):
            load_config(write(tmp_path, text))
    elif "*in" in text:
        with pytest.raises(ConfigError, match=r"smtp_out\.port: expected a whole number"):
            load_config(write(tmp_path, text))
    else:
        assert load_config(write(tmp_path, text)).smtp_in.port == 2626


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yaml")


def test_secrets_come_from_env_or_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("T_SECRET", "s3cret")
    assert read_secret(env="T_SECRET", file=None, what="x") == "s3cret"
    (tmp_path / "pw").write_text("from-file\n")
    assert read_secret(env=None, file=tmp_path / "pw", what="x") == "from-file"
    monkeypatch.delenv("T_SECRET")
    with pytest.raises(ConfigError, match="T_SECRET is not set"):
        read_secret(env="T_SECRET", file=None, what="x")


def test_kb_figures_out_of_range_are_config_errors(tmp_path: Path) -> None:
    from maild.config import config_from_dict
    from tests.conftest import base_config

    for kb, message in (
        ({"min_score": 1.5}, "kb.min_score: 1.5 is not between 0 and 1"),
        ({"max_suggestions": 50}, "kb.max_suggestions: 50 is not between 0 and 10"),
    ):
        data = base_config(tmp_path, "sqlite:///x.db", kb=kb)
        with pytest.raises(ConfigError, match=message):
            config_from_dict(data, base_dir=tmp_path)
