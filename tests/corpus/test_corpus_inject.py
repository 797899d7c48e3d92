"""Every message of the shared corpus goes through ``ticketd inject`` without a crash.

Each ends as a ticket message, a duplicate of one, robot mail that concerns no ticket (kept in the
spool), or a quarantined spool entry with a clear error. Nothing raises out of the command.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from maild.cli.main import main
from maild.store.models import Message, SpoolEntry
from tests.conftest import base_config, corpus_dir


def corpus_messages() -> list[Path]:
    root = corpus_dir()
    with (root / "index.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["kind"] == "message"]
    return [root / r["path"] for r in rows]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    data = base_config(tmp_path, f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}")
    path = tmp_path / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(data, fh)
    return path


def test_every_corpus_message_is_stored_or_quarantined(config_path: Path) -> None:
    files = corpus_messages()
    assert len(files) > 800
    out, err = io.StringIO(), io.StringIO()
    for start in range(0, len(files), 100):
        chunk = [str(p) for p in files[start : start + 100]]
        with redirect_stdout(out), redirect_stderr(err):
            status = main(["inject", "--config", str(config_path), *chunk])
        assert status == 0, err.getvalue()[-2000:]
    outcomes: Counter[str] = Counter()
    inbound: Counter[str] = Counter()
    entries = list(SpoolEntry.select().order_by(SpoolEntry.id))
    assert len(entries) == len(files)
    for path, entry in zip(files, entries, strict=True):
        if entry.status == "quarantined":
            first = (entry.last_error or "").splitlines()[0]
            assert first.startswith("unparseable: "), first  # clear, not a traceback
            outcomes["quarantined"] += 1
        else:
            assert entry.status == "done", (entry.id, entry.status, entry.last_error)
            word = entry.result.split()[0]
            assert word in ("new", "append", "duplicate", "ignored:"), entry.result
            if word in ("new", "append"):
                assert Message.select().where(Message.spool_entry == entry.id).exists()
            else:
                assert bytes(entry.raw), "kept in the spool when not stored on a ticket"
            outcomes[word.rstrip(":")] += 1
        if "/inbound/" in str(path):
            inbound[entry.status if entry.status != "done" else entry.result.split()[0]] += 1
    print("\ncorpus inject outcomes:", dict(outcomes), "inbound/ only:", dict(inbound))
    # First messages from inbound/ are people's mail: nearly all must reach a ticket. Those that
    # do not are files with no header or no sender at all (raw TNEF, an Outlook .msg, a body).
    reached = inbound["new"] + inbound["append"] + inbound["duplicate"]
    assert reached >= 0.95 * sum(inbound.values()), inbound
