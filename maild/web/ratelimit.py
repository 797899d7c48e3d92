"""Rate limits for the web (the ``limits`` library, in memory, moving windows).

Each :class:`Limit` is a set of rates (``"20/hour;240/day"``) applied per key: a client address,
a channel, a mail address. A request is counted only when every limit it is checked against still
has room, so a refused request does not use up anything. The counters live in this process: with
several daemons each keeps its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class Limiter:
    def __init__(self) -> None:
        self.strategy = MovingWindowRateLimiter(MemoryStorage())

    def limit(self, name: str, rates: str) -> Limit:
        return Limit(self, name, tuple(limits.parse_many(rates)))


class Limit:
    def __init__(self, limiter: Limiter, name: str, items: Sequence[limits.RateLimitItem]) -> None:
        self.limiter = limiter
        self.name = name
        self.items = items

    def allows(self, key: str) -> bool:
        return all(self.limiter.strategy.test(item, self.name, key) for item in self.items)

    def count(self, key: str) -> None:
        for item in self.items:
            self.limiter.strategy.hit(item, self.name, key)


def admit(*checks: tuple[Limit, str]) -> bool:
    """True (and every limit counted) when each (limit, key) has room; else False, nothing counted."""
    if not all(limit.allows(key) for limit, key in checks):
        return False
    for limit, key in checks:
        limit.count(key)
    return True
