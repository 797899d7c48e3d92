"""Which rules need an optional part (the sentiment scorer): ``rules check`` names them when the
part is missing, and the rules skip instead of crashing (their condition does not hold)."""

from __future__ import annotations

from collections.abc import Iterable

from maild.routing.schema import AllOf, AnyOf, Condition, Not, Rule, ScoreCond


def uses(cond: Condition | None, of: str) -> bool:
    """Whether ``cond`` tests the score named ``of`` anywhere (``sentiment``)."""
    if cond is None:
        return False
    if isinstance(cond, ScoreCond):
        return cond.of == of
    if isinstance(cond, AllOf | AnyOf):
        return any(uses(item, of) for item in cond.items)
    if isinstance(cond, Not):
        return uses(cond.item, of)
    return False


def missing_part_warnings(rules: Iterable[Rule]) -> list[str]:
    """One warning per rule that needs a part this installation lacks."""
    from maild.pipeline import sentiment

    if sentiment.available():
        return []
    return [
        f"warning: {rule.where or '?'}: rule {rule.name!r} tests sentiment, but "
        f"{sentiment.MISSING}; it does not match until then"
        for rule in rules
        if uses(rule.when, "sentiment")
    ]
