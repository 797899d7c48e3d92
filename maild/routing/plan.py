"""A rule set prepared for fast evaluation, per event, and the trace of one run, built when read.

At load, each event gets a :class:`Plan`: every rule with its compiled predicate
(:mod:`maild.routing.predicates`) and its literal gate (:mod:`maild.routing.gates`), the rules
that always run, and the gate index. Per message, :meth:`Plan.run` calls only the rules that
can match, in order, until one with ``stop: true`` matches, and returns what matched. The trace of
every rule (matched, no_match, skipped, not_reached, with the reason in words) is a
:class:`LazyTrace`: built on first read, its reasons worked out by the explaining
:func:`~maild.routing.match.check` on a context of its own, since most decisions are applied and
never explained.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, NamedTuple, overload

from maild.routing.gates import GateIndex, gate
from maild.routing.match import MatchContext, Outcome, check
from maild.routing.predicates import Predicate, predicate
from maild.routing.schema import Rule

Verdict = Literal["matched", "no_match", "skipped", "not_reached"]


class Explained:
    """The reason a rule matched or missed, worked out only when read."""

    __slots__ = ("_cond", "_context", "_reason")

    def __init__(self, cond: Any, context: Callable[[], MatchContext]) -> None:
        self._cond = cond
        self._context = context
        self._reason: str | None = None

    @property
    def reason(self) -> str:
        if self._reason is None:
            self._reason = check(self._cond, self._context()).reason
        return self._reason


class RuleTrace(NamedTuple):
    """What happened to one rule in an evaluation."""

    rule: str
    where: str  # file:line
    verdict: Verdict
    because: str | Outcome | Explained  # rendered by ``reason`` when asked for
    actions: tuple[str, ...] = ()  # what a matching rule asked for
    stop: bool = False  # this rule matched and ended the evaluation

    @property
    def reason(self) -> str:
        """The deciding condition in words, or why the rule was skipped."""
        return self.because if isinstance(self.because, str) else self.because.reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "where": self.where,
            "verdict": self.verdict,
            "reason": self.reason,
            "actions": list(self.actions),
            "stop": self.stop,
        }


class Step(NamedTuple):
    """One rule as an evaluation for one event sees it."""

    rule: Rule
    where: str
    actions: tuple[str, ...]
    test: Predicate | None  # None: no conditions, always matches
    skip: str | None  # why the rule never runs for this event (disabled, other events)


class Run(NamedTuple):
    """What one evaluation found: matched positions in order, and the one that stopped."""

    matched: tuple[int, ...]
    stopped_at: int | None


class Plan:
    """The rules for one event, ready to run."""

    def __init__(self, rules: Sequence[Rule], event: str) -> None:
        steps, always, gated = [], [], []
        for position, rule in enumerate(rules):
            skip = None
            if not rule.enabled:
                skip = "disabled"
            elif event not in rule.events:
                skip = f"on {', '.join(rule.events)}"
            test = predicate(rule.when) if rule.when is not None and skip is None else None
            where = str(rule.where) if rule.where else ""
            steps.append(Step(rule, where, rule.then.describe(), test, skip))
            if skip is not None:
                continue
            literals = gate(rule.when)
            if literals is None:
                always.append(position)
            else:
                gated.append((position, literals))
        self.steps = tuple(steps)
        self.always = frozenset(always)
        self.index = GateIndex.build(gated)

    def run(self, ctx: MatchContext) -> Run:
        steps = self.steps
        matched: list[int] = []
        for position in sorted(self.always | self.index.hits(ctx)):
            step = steps[position]
            if step.test is None or step.test(ctx):
                matched.append(position)
                if step.rule.stop:
                    return Run(tuple(matched), position)
        return Run(tuple(matched), None)


class LazyTrace(Sequence[RuleTrace]):
    """Every rule's :class:`RuleTrace` for one run, made when first read."""

    def __init__(self, plan: Plan, run: Run, context: Callable[[], MatchContext]) -> None:
        self._plan = plan
        self._run = run
        self._context = context
        self._items: tuple[RuleTrace, ...] | None = None

    @property
    def matched_names(self) -> tuple[str, ...]:
        return tuple(self._plan.steps[p].rule.name for p in self._run.matched)

    def _build(self) -> tuple[RuleTrace, ...]:
        if self._items is not None:
            return self._items
        matched, stop = frozenset(self._run.matched), self._run.stopped_at
        stopper = self._plan.steps[stop].rule.name if stop is not None else ""
        out = []
        for position, step in enumerate(self._plan.steps):
            rule = step.rule
            if stop is not None and position > stop:
                out.append(
                    RuleTrace(rule.name, step.where, "not_reached", f"stopped by {stopper!r}")
                )
            elif step.skip is not None:
                out.append(RuleTrace(rule.name, step.where, "skipped", step.skip))
            elif position in matched:
                because: str | Explained = (
                    Explained(rule.when, self._context)
                    if rule.when is not None
                    else "no conditions: always"
                )
                out.append(
                    RuleTrace(
                        rule.name, step.where, "matched", because, step.actions, position == stop
                    )
                )
            else:
                out.append(
                    RuleTrace(
                        rule.name, step.where, "no_match", Explained(rule.when, self._context)
                    )
                )
        self._items = tuple(out)
        return self._items

    @overload
    def __getitem__(self, index: int) -> RuleTrace: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[RuleTrace, ...]: ...

    def __getitem__(self, index: int | slice) -> RuleTrace | tuple[RuleTrace, ...]:
        return self._build()[index]

    def __len__(self) -> int:
        return len(self._plan.steps)

    def __iter__(self) -> Iterator[RuleTrace]:
        return iter(self._build())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LazyTrace({self._build()!r})"
