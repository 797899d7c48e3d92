"""The ``lifecycle:`` section of config.yaml: defaults, the shipped file, and errors with key paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.config import LifecycleConfig, load_config
from maild.errors import ConfigError

MINIMAL = "instance:\n  ticket_prefix: ACME\n  support_addresses: [support@example.com]\n"


def load(tmp_path: Path, extra: str = ""):
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL + extra)
    return load_config(path)


def test_lifecycle_defaults_and_the_shipped_file(tmp_path: Path) -> None:
    assert load(tmp_path).lifecycle == LifecycleConfig(
        auto_close_days=7.0, pending_reminder_days=3.0, pending_resolve_days=7.0, survey=True
    )
    shipped = load_config(Path(__file__).resolve().parents[2] / "config.yaml")
    assert shipped.lifecycle.auto_close_days == 7
    custom = load(
        tmp_path, "lifecycle: {auto_close_days: 0.5, pending_reminder_days: 0, survey: false}\n"
    )
    assert (custom.lifecycle.auto_close_days, custom.lifecycle.pending_reminder_days) == (0.5, 0.0)
    assert custom.lifecycle.survey is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("lifecycle:\n  auto_close: 3\n", "config.yaml:5: lifecycle.auto_close: unknown key"),
        (
            "lifecycle:\n  auto_close_days: soon\n",
            "config.yaml:5: lifecycle.auto_close_days: expected a number",
        ),
        ("lifecycle:\n  survey: maybe\n", "lifecycle.survey: expected true or false"),
        ("lifecycle:\n  auto_close_days: -1\n", "lifecycle.auto_close_days: -1 must be 0 (never)"),
        (
            "lifecycle:\n  pending_reminder_days: 7\n  pending_resolve_days: 5\n",
            "lifecycle.pending_reminder_days: 7 must be less than pending_resolve_days (5)",
        ),
    ],
)
def test_lifecycle_errors(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    assert message in str(info.value)
