"""Running totals that outlive the rows they count, for the metrics' ``*_total`` counters.

Retention deletes processed spool rows and sent outbox rows; just before, in the same
transaction, it adds them to :class:`~maild.store.models.OpsTally`. A metric is then the rows
still in the table plus the tally, and never goes down.
"""

from __future__ import annotations

from peewee import Database, fn

from maild.store.db import write_tx
from maild.store.models import OpsTally, OutboxEntry, SpoolEntry


def tally_deleted(model: type, ids: list[int]) -> None:
    """Inside retention's delete transaction: count the rows about to go, by kind."""
    if model is SpoolEntry:
        rows = (
            SpoolEntry.select(SpoolEntry.source, fn.COUNT(SpoolEntry.id).alias("n"))
            .where(SpoolEntry.id.in_(ids))
            .group_by(SpoolEntry.source)
        )
        counts = {f"spool.deleted.{r.source}": r.n for r in rows}
    elif model is OutboxEntry:
        counts = {"outbox.deleted.sent": len(ids)}
    else:
        return
    for key, n in counts.items():
        updated = OpsTally.update(value=OpsTally.value + n).where(OpsTally.key == key).execute()
        if not updated:
            OpsTally.insert(key=key, value=n).execute()


def tallies(prefix: str) -> dict[str, int]:
    rows = OpsTally.select().where(OpsTally.key.startswith(prefix))
    return {r.key[len(prefix) :]: r.value for r in rows}


def add_tally(db: Database, key: str, n: int) -> None:
    """Add ``n`` to a tally in a transaction of its own (tests, tools)."""
    with write_tx(db):
        if not OpsTally.update(value=OpsTally.value + n).where(OpsTally.key == key).execute():
            OpsTally.insert(key=key, value=n).execute()
