"""Reloading: changed files load, a broken set never replaces the running one, and a reload while
messages are evaluated gives each message exactly one whole rule set. No sleeps: mtimes are set
with os.utime."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from maild.routing.loader import RulesError
from maild.routing.reload import RulesHolder
from tests.ruleskit import NOW, make_msg

V1 = "rules:\n  - {name: tag, then: {tags: [v1]}}\n"
V2 = "rules:\n  - {name: tag, then: {tags: [v2]}}\n  - {name: more, then: {tags: [v2b]}}\n"
BROKEN = "rules:\n  - {name: tag, then: {tags: [v3]}, stpo: true}\n"


def write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))


def tags(holder: RulesHolder) -> list[str]:
    decision = holder.rules.evaluate("new_ticket", make_msg(), None, NOW)
    return [a.value for a in decision.tags_add]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "rules"
    path.mkdir()
    write(path / "20-rules.yaml", V1, 1_000)
    return path


def test_open_loads_and_an_unchanged_folder_is_not_reloaded(folder: Path) -> None:
    holder = RulesHolder.open(folder)
    assert tags(holder) == ["v1"] and holder.generation == 1
    assert holder.maybe_reload() is False
    assert holder.generation == 1


def test_open_refuses_a_broken_folder(folder: Path) -> None:
    write(folder / "20-rules.yaml", BROKEN, 1_000)
    with pytest.raises(RulesError) as info:
        RulesHolder.open(folder)
    assert "unknown key 'stpo'" in info.value.errors[0]


def test_changed_file_reloads(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = RulesHolder.open(folder)
    write(folder / "20-rules.yaml", V2, 2_000)
    with caplog.at_level(logging.INFO, logger="ticketd.rules"):
        assert holder.maybe_reload() is True
    assert tags(holder) == ["v2", "v2b"]
    assert f"rules: loaded 1 file, 0 agents, 0 teams, 2 rules, 0 SLA policies from {folder}" in (
        caplog.text
    )


def test_same_mtime_but_new_size_reloads(folder: Path) -> None:
    holder = RulesHolder.open(folder)
    write(folder / "20-rules.yaml", V2, 1_000)
    assert holder.maybe_reload() is True
    assert tags(holder) == ["v2", "v2b"]


def test_added_and_removed_files_reload(folder: Path) -> None:
    holder = RulesHolder.open(folder)
    write(folder / "30-more.yaml", "rules:\n  - {name: extra, then: {tags: [extra]}}\n", 1_000)
    assert holder.maybe_reload() is True
    assert tags(holder) == ["v1", "extra"]
    (folder / "30-more.yaml").unlink()
    assert holder.maybe_reload() is True
    assert tags(holder) == ["v1"]


def test_broken_set_keeps_the_running_rules(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = RulesHolder.open(folder)
    running = holder.rules
    write(folder / "20-rules.yaml", BROKEN, 2_000)
    with caplog.at_level(logging.INFO, logger="ticketd.rules"):
        assert holder.maybe_reload() is False
        assert holder.maybe_reload() is False  # the same broken files: refused, logged once
    assert holder.rules is running and tags(holder) == ["v1"]
    assert holder.last_error is not None
    refusals = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(refusals) == 1
    assert "keeping the running rules" in refusals[0].getMessage()
    assert "20-rules.yaml:2: rule 'tag': unknown key 'stpo'" in refusals[0].getMessage()
    # The admin fixes the file: it loads, and the error is gone.
    write(folder / "20-rules.yaml", V2, 3_000)
    assert holder.maybe_reload() is True
    assert tags(holder) == ["v2", "v2b"] and holder.last_error is None


def test_force_reloads_and_logs_again(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = RulesHolder.open(folder)
    assert holder.maybe_reload(force=True) is True  # SIGHUP: reload even if unchanged
    assert holder.generation == 2
    write(folder / "20-rules.yaml", BROKEN, 2_000)
    with caplog.at_level(logging.ERROR, logger="ticketd.rules"):
        holder.maybe_reload()
        holder.maybe_reload(force=True)
    assert len(caplog.records) == 2  # an explicit request always answers


def test_folder_removed_keeps_rules_and_logs_once(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = RulesHolder.open(folder)
    moved = folder.with_name("elsewhere")
    folder.rename(moved)
    with caplog.at_level(logging.ERROR, logger="ticketd.rules"):
        assert holder.maybe_reload() is False
        assert holder.maybe_reload() is False
    assert len(caplog.records) == 1 and "does not exist" in caplog.text
    assert tags(holder) == ["v1"]
    moved.rename(folder)
    assert holder.maybe_reload() is False  # back as it was: the loaded set still matches


def test_templates_are_part_of_the_fingerprint(folder: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    write(folder / "20-rules.yaml", "rules:\n  - {name: r, then: {reply: welcome}}\n", 2_000)
    with pytest.raises(RulesError, match="no template 'welcome'"):
        RulesHolder.open(folder, templates)
    holder = RulesHolder(folder, templates)
    assert holder.maybe_reload() is False
    (templates / "welcome.txt.j2").write_text("Hello")
    assert holder.maybe_reload() is True  # the missing template arrived


def test_reload_while_messages_flow(folder: Path) -> None:
    """Every evaluation sees one whole set (never a mix, never none) while sets are swapped."""
    holder = RulesHolder.open(folder)
    seen: list[tuple[str, ...]] = []
    stop = threading.Event()
    running = threading.Event()

    def evaluate() -> None:
        while not stop.is_set():
            rules = holder.rules  # once per message, as the worker does
            decision = rules.evaluate("new_ticket", make_msg(), None, NOW)
            seen.append(tuple(a.value for a in decision.tags_add))
            running.set()

    reader = threading.Thread(target=evaluate)
    reader.start()
    assert running.wait(10)
    try:
        for i in range(30):
            text = V2 if i % 2 == 0 else V1
            write(folder / "20-rules.yaml", text, 2_000 + i)
            assert holder.maybe_reload() is True
    finally:
        stop.set()
        reader.join()
    assert holder.generation == 31
    assert set(seen) <= {("v1",), ("v2", "v2b")}


def test_unexpected_loader_failure_keeps_rules(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    holder = RulesHolder.open(folder)

    def explode(*_args: object, **_kw: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("maild.routing.reload.load_rules", explode)
    write(folder / "20-rules.yaml", V2, 2_000)
    with caplog.at_level(logging.ERROR, logger="ticketd.rules"):
        assert holder.maybe_reload() is False
    assert tags(holder) == ["v1"]
    assert "RuntimeError('bug')" in str(holder.last_error)
