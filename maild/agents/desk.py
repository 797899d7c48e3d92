"""The worker's view of agents: whose mail this is, and the hook that acts on it.

The worker calls :meth:`AgentDesk.read` before it stores a message that threads to a ticket. When
the sender is an agent (``rules/10-people.yaml``) other than the ticket's requester, it checks
trust (:mod:`maild.agents.trust`) and, for a trusted mail, reads the commands off the top of the
visible text (:mod:`maild.agents.commands`). The result, an :class:`AgentMail`, tells the worker
how to store the message:

- trusted, with text for the customer: event ``agent_reply``, Message kind ``agent``;
- trusted, but a note (``#note``), commands only, nothing written, or an invalid command: event
  ``agent_note``, kind ``note``. The rules do not run on it: it answers nobody, so rules such as
  "answered tickets wait for the customer" must not fire;
- not trusted: None of the above. The worker stores it as the customer mail it claims not to be
  (event ``customer_reply``, no command runs) and the hook warns the agent.

A trusted agent's mail does not re-open the ticket as a customer's reply would, and its To/Cc
are not added as watchers (they are usually colleagues; ``#cc`` edits watchers). An agent who
writes to the plain support address without threading to a ticket opens a new ticket as any
customer would (the worker never asks :meth:`read` then), and their replies on that ticket are
the requester's. A trusted reply to a closed ticket stays on it (no follow-up ticket) and leaves
it closed unless a ``#status`` says otherwise. The rule set is read once per message and kept on the :class:`AgentMail`.

:meth:`AgentDesk.__call__` is the hook, run after the rules inside the message's transaction:
it applies a trusted mail (:mod:`maild.agents.reply`), warns of a forgery, and sends the
built-in notifications (:mod:`maild.agents.notify`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from maild.agents import macros, mentions, notify, relations, reply, roles, trust
from maild.agents.commands import CommandError, Commands, command_args, parse_commands
from maild.app import App
from maild.notify.templates import Renderer
from maild.pipeline.addresses import Signer
from maild.pipeline.message import Address, InboundMessage
from maild.pipeline.quotes import REPLY_MARKER
from maild.routing.engine import RuleSet
from maild.routing.reload import RulesHolder
from maild.routing.schema import Agent
from maild.store.models import Ticket

if TYPE_CHECKING:
    from maild.worker import StoreContext


@dataclass(frozen=True)
class AgentMail:
    """A mail whose From is an agent's: the trust verdict and, when trusted, its commands."""

    agent: Agent
    verdict: trust.Verdict
    rules: RuleSet
    commands: Commands | None = None  # None when not trusted: no command runs
    text: str = ""  # the visible text, commands included
    mentioned: tuple[str, ...] = ()  # agents an internal note calls in with @name

    @property
    def trusted(self) -> bool:
        return self.verdict.trusted

    @property
    def public(self) -> bool:
        """Whether the mail answers the customer (trusted, valid, not a note, has text)."""
        c = self.commands
        return self.trusted and c is not None and not c.errors and not c.note and bool(c.body)

    @property
    def event(self) -> str:
        return "agent_reply" if self.public else "agent_note"

    @property
    def kind(self) -> str:
        return "agent" if self.public else "note"

    @property
    def body(self) -> str:
        """What is stored as the message's visible text (and sent, for a public reply)."""
        c = self.commands
        if c is None:
            return self.text
        return self.text if c.errors else c.body


def checked(
    commands: Commands, agent: Agent, rules: RuleSet, *, team: str | None, assignee: str | None
) -> tuple[Commands, tuple[str, ...]]:
    """The commands with what the author's role refuses and bad ``@mentions`` added as errors,
    and the agents a valid note mentions. Both checks run before anything changes."""
    errors = list(commands.errors)
    given = command_args(commands.lines)
    public = not commands.errors and not commands.note and bool(commands.body)
    if public:
        given.append(("reply", ""))
    for arg, refused in roles.refusals(agent, given, team=team, assignee=assignee):
        line = f"#{refused.command} {arg}".strip() if refused.command != "reply" else "(answer)"
        errors.append(CommandError(0, line, refused.reason, needs=refused.needs))
    mentioned: tuple[str, ...] = ()
    if commands.note or (not public and commands.body):
        found = mentions.resolve(commands.body, rules.agents, author=agent.email)
        errors += [CommandError(line, token, reason) for line, token, reason in found.errors]
        mentioned = found.agents
    if len(errors) == len(commands.errors):
        return commands, mentioned
    return replace(commands, errors=tuple(errors)), ()


class AgentDesk:
    """Reads agents' mail for the worker, and is the hook that acts on it."""

    def __init__(self, app: App, holder: RulesHolder, renderer: Renderer | None = None) -> None:
        self.app = app
        self.holder = holder
        self.renderer = renderer or Renderer(app.config.templates_dir)
        self.signer = Signer(app.config.prefix, app.secret)

    def read(self, msg: InboundMessage, sender: Address, ticket: Ticket) -> AgentMail | None:
        """The agent's mail on ``ticket``, or None when the sender is no agent (or the requester)."""
        rules = self.holder.rules
        agent = rules.agents.get(sender.email.lower())
        if agent is None or ticket.requester.email.lower() == agent.email:
            return None
        verdict = trust.check(
            msg,
            agent_email=agent.email,
            number=ticket.id,
            signer=self.signer,
            support=self.app.config.support_addresses,
            authserv_id=self.app.config.agents.authserv_id,
        )
        if not verdict.trusted:
            return AgentMail(agent, verdict, rules)
        from maild.worker import reply_text

        text = reply_text(msg)
        if REPLY_MARKER in text:
            text = ""  # nothing above our quoted notification: the agent wrote nothing
        commands = parse_commands(
            text,
            rules=rules,
            author=agent.email,
            support=self.app.config.support_addresses,
            prefix=self.app.config.prefix,
            now=self.app.clock.now(),
        )
        commands = self._verify(commands, ticket, agent, rules)
        commands, mentioned = checked(
            commands, agent, rules, team=ticket.team, assignee=ticket.assignee
        )
        return AgentMail(agent, verdict, rules, commands, text, mentioned)

    def _verify(self, commands: Commands, ticket: Ticket, agent: Agent, rules: RuleSet) -> Commands:
        """What the parser cannot know: that ``#merge``/``#link`` targets can be used, and what
        a ``#macro`` says (its text rendered, its changes validated). Problems become errors."""
        if commands.errors:
            return commands
        prefix = self.app.config.prefix
        errors: list[CommandError] = []

        def line(name: str) -> str:
            return next((ln for ln in commands.lines if ln.lower().startswith(f"#{name}")), name)

        if commands.merge_into is not None:
            why = relations.merge_problem(ticket, commands.merge_into, prefix)
            if why is not None:
                errors.append(CommandError(0, line("merge"), why))
        for number in commands.link:
            why = relations.link_problem(ticket, number, prefix, unlink=False)
            if why is not None:
                errors.append(CommandError(0, line("link"), why))
        for number in commands.unlink:
            why = relations.link_problem(ticket, number, prefix, unlink=True)
            if why is not None:
                errors.append(CommandError(0, line("unlink"), why))
        if commands.macro is not None and not errors:
            try:
                commands = self._expand(commands, ticket, agent, rules)
            except macros.MacroError as exc:
                errors.append(CommandError(0, line("macro"), str(exc)))
        if not errors:
            return commands
        return replace(commands, errors=(*commands.errors, *errors))

    def _expand(self, commands: Commands, ticket: Ticket, agent: Agent, rules: RuleSet) -> Commands:
        from maild.notify.compose import context

        assert commands.macro is not None
        macro = macros.load(self.app.config.templates_dir, commands.macro)
        changes = macros.changes(macro, rules, agent.email)
        variables = context(self.app, ticket, None, Address(agent.email, agent.name))
        try:
            text = self.renderer.render_source(macro.source, variables)
        except Exception as exc:  # any error of the admin's template: reported, nothing sent
            raise macros.MacroError(
                f"macros/{macro.name}.j2 failed to render: {type(exc).__name__}: {str(exc)[:300]}"
            ) from None
        if not text.strip():
            raise macros.MacroError(f"macros/{macro.name}.j2 rendered no text")
        return macros.merged(commands, changes, text)

    def __call__(self, ctx: StoreContext) -> None:
        mail = ctx.agent
        trusted = mail is not None and mail.trusted
        # A trusted agent's mail applies on a spam ticket too (the agent saw a false positive);
        # dropping it would lose the answer and the commands without a word.
        if ctx.event in ("robot", "satisfaction") or (ctx.ticket.spam and not trusted):
            return
        rules = mail.rules if mail is not None else self.holder.rules
        now = ctx.message.created_at
        previous = ctx.ticket_before.assignee if ctx.ticket_before is not None else None
        if mail is not None and mail.trusted:
            reply.apply_mail(self.app, self.renderer, ctx, mail)
        elif mail is not None:
            notify.forgery_warning(
                self.app,
                self.renderer,
                ctx.ticket,
                agent=Address(mail.agent.email, mail.agent.name),
                reason=mail.verdict.how,
                cause=ctx.message,
                at=now,
                outcome=ctx.outcome,
            )
        stranger = ctx.event == "non_participant"
        if ctx.event == "customer_reply" or (
            stranger and ctx.ticket.status not in ("resolved", "closed")
        ):
            notify.notify_customer_reply(
                self.app,
                self.renderer,
                rules,
                ctx.ticket,
                cause=ctx.message,
                author=ctx.actor,
                at=now,
                outcome=ctx.outcome,
                non_participant=stranger,
            )
        notify.notify_assigned(
            self.app,
            self.renderer,
            rules,
            ctx.ticket,
            previous=previous,
            cause=ctx.message,
            by_self=mail.agent.email if mail is not None and mail.trusted else None,
            at=now,
            outcome=ctx.outcome,
        )
