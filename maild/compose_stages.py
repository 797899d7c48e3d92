"""The composition: which stages run after a message is stored, and in which order.

This is the one place that wires the stages (:mod:`maild.stage` is their contract, the worker
:mod:`maild.worker` their runner). The order is part of the behaviour:

1. ``rules`` (:class:`maild.routing.apply.RulesStage`): the rules may route, tag, mark spam or
   reply (a rule's reply stands in for the acknowledgement);
2. ``sla`` (:class:`maild.sla.stage.SlaStage`): policy and due times, after the rules that set
   priority, team, status or the policy;
3. ``agents`` (:class:`maild.agents.desk.AgentDesk`): an agent's mail and commands, after the
   rules so that an agent's command wins, then the notifications to agents;
4. ``auto mail`` (:class:`maild.notify.auto.AutoMail`): acknowledgements and bounces, last, so
   that it sees whether a rule replied and whether the ticket is spam.

To add a stage: write a callable that takes a :class:`maild.stage.Stored` and returns a
:class:`maild.stage.Outcome` (the words for the log line; ``replied=True`` if it answered the
requester), in the module of its feature, changing tickets only through the store inside the
transaction it is given; then put it in the tuple of :func:`stages` at its place in the order,
and in the README's diagram and module table. A stage must not import the worker or this module.
"""

from __future__ import annotations

import logging

from maild.agents.desk import AgentDesk
from maild.app import App
from maild.kb.holder import KbHolder
from maild.notify.auto import AutoMail
from maild.notify.templates import Renderer
from maild.routing.apply import RulesStage
from maild.routing.reload import RulesHolder
from maild.sla.stage import SlaStage
from maild.stage import Stage

log = logging.getLogger("ticketd.kb")


def stages(app: App, rules: RulesHolder, desk: AgentDesk, renderer: Renderer) -> tuple[Stage, ...]:
    """The stages after threading, in the order they run (see the module docstring)."""
    return (
        RulesStage(app, rules, renderer),
        SlaStage(app, rules),
        desk,
        AutoMail(app, renderer),
    )


def compose(app: App, rules: RulesHolder | None = None) -> tuple[AgentDesk, tuple[Stage, ...]]:
    """The agents' desk (it also tells agents' mail from customers') and the stages.

    Without ``rules`` the rules folder is loaded now; broken rules raise RulesError.
    """
    holder = (
        rules
        if rules is not None
        else RulesHolder.open(app.config.rules_dir, app.config.templates_dir)
    )
    renderer = Renderer(app.config.templates_dir)
    try:  # the index as the articles are now; a failure leaves the last index in use
        KbHolder(app.db, app.config.kb_dir).maybe_reload()
    except Exception:
        log.exception("kb: indexing %s failed; suggestions use the last index", app.config.kb_dir)
    desk = AgentDesk(app, holder, renderer)
    return desk, stages(app, holder, desk, renderer)
