"""Which rules need an optional part (the sentiment scorer, the triage model): ``rules check``
names them when the part is missing, and the rules skip instead of crashing (their condition
does not hold; a ``predicted`` team or priority is left out)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from maild.routing.schema import (
    PREDICTED,
    AllOf,
    AnyOf,
    Condition,
    Not,
    PredictionCond,
    Rule,
    ScoreCond,
)


def uses(cond: Condition | None, of: str) -> bool:
    """Whether ``cond`` tests ``of`` anywhere (``sentiment``, or ``prediction``)."""
    if cond is None:
        return False
    if isinstance(cond, ScoreCond):
        return cond.of == of
    if isinstance(cond, PredictionCond):
        return of == "prediction"
    if isinstance(cond, AllOf | AnyOf):
        return any(uses(item, of) for item in cond.items)
    if isinstance(cond, Not):
        return uses(cond.item, of)
    return False


def predicts(rule: Rule) -> bool:
    """Whether ``rule`` needs the triage model (a condition or a ``predicted`` action)."""
    then = rule.then
    return uses(rule.when, "prediction") or PREDICTED in (then.team, then.priority)


def missing_part_warnings(rules: Iterable[Rule], data_dir: Path | None = None) -> list[str]:
    """One warning per rule that needs a part this installation lacks (the model is looked for
    under ``data_dir``; without one, only the sentiment scorer is checked)."""
    from maild.pipeline import sentiment

    rules = list(rules)
    out = []
    if not sentiment.available():
        out += [
            f"warning: {rule.where or '?'}: rule {rule.name!r} tests sentiment, but "
            f"{sentiment.MISSING}; it does not match until then"
            for rule in rules
            if uses(rule.when, "sentiment")
        ]
    needing = [rule for rule in rules if predicts(rule)]
    if needing and data_dir is not None:
        from maild.triage.model import TriageError, load

        try:
            load(data_dir)
        except TriageError as exc:
            out += [
                f"warning: {rule.where or '?'}: rule {rule.name!r} uses the triage model, but "
                f"{exc}; it does not match until then"
                for rule in needing
            ]
    return out
