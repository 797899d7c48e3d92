"""The worker's view of agents: whose mail this is, and the stage that acts on it.

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
  (event ``customer_reply``, no command runs) and the stage warns the agent.

A trusted agent's mail does not re-open the ticket as a customer's reply would, and its To/Cc
are not added as watchers (they are usually colleagues; ``#cc`` edits watchers). An agent who
writes to the plain support address without threading to a ticket opens a new ticket as any
customer would (the worker never asks :meth:`read` then), and their replies on that ticket are
the requester's. A trusted reply to a closed ticket stays on it (no follow-up ticket) and leaves
it closed unless a ``#status`` says otherwise. The rule set is read once per message and kept on the :class:`AgentMail`.

:meth:`AgentDesk.__call__` is the agents stage (:mod:`maild.compose_stages`), run after the
rules and the SLA stage inside the message's transaction:
it applies a trusted mail (:mod:`maild.agents.reply`), warns of a forgery, and sends the
built-in notifications (:mod:`maild.agents.notify`).
"""

from __future__ import annotations

from dataclasses import replace

from maild.agents import macros, mentions, notify, relations, reply, roles, trust
from maild.agents.commands import CommandError, Commands, command_args, parse_commands
from maild.agents.mail import AgentMail
from maild.app import App
from maild.notify.templates import Renderer
from maild.pipeline.addresses import Signer
from maild.pipeline.message import Address, InboundMessage
from maild.pipeline.quotes import REPLY_MARKER
from maild.pipeline.reply import reply_text
from maild.routing.engine import RuleSet
from maild.routing.reload import RulesHolder
from maild.routing.schema import Agent
from maild.stage import Outcome, Stored
from maild.store.models import Ticket

__all__ = ["AgentDesk", "AgentMail", "checked"]


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
    """Reads agents' mail for the worker, and is the stage that acts on it."""

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
            resolve=relations.resolve_merged,
        )
        if not verdict.trusted:
            return AgentMail(agent, verdict, rules)
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

        def peer_refused(name: str, number: int) -> None:
            """The other ticket of a #merge, #link or #unlink is acted on too: the role counts
            on its team as well (a lead merging into another team's ticket would read it)."""
            peer = Ticket.get_or_none(Ticket.id == number)
            if peer is None:
                return
            refused = roles.refusal(
                agent, name, team=peer.team, assignee=peer.assignee, assigns_other=False
            )
            if refused is not None:
                reason = f"{refused.reason} ({prefix}-{number})"
                errors.append(CommandError(0, line(name), reason, needs=refused.needs))

        if commands.merge_into is not None:
            why = relations.merge_problem(ticket, commands.merge_into, prefix)
            if why is not None:
                errors.append(CommandError(0, line("merge"), why))
            else:
                peer_refused("merge", commands.merge_into)
        for name, numbers in (("link", commands.link), ("unlink", commands.unlink)):
            for number in numbers:
                why = relations.link_problem(ticket, number, prefix, unlink=name == "unlink")
                if why is not None:
                    errors.append(CommandError(0, line(name), why))
                else:
                    peer_refused(name, number)
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

    def __call__(self, stored: Stored) -> Outcome:
        """The agents stage: apply a trusted agent's mail, warn of a forgery, notify agents."""
        mail = stored.agent
        ticket, message, now = stored.ticket, stored.message, stored.message.created_at
        trusted = mail is not None and mail.trusted
        # A trusted agent's mail applies on a spam ticket too (the agent saw a false positive);
        # dropping it would lose the answer and the commands without a word.
        if stored.event in ("robot", "satisfaction") or (ticket.spam and not trusted):
            return Outcome()
        rules = mail.rules if mail is not None else self.holder.rules
        previous = stored.ticket_before.assignee if stored.ticket_before is not None else None
        words: tuple[str, ...] = ()
        if mail is not None and mail.trusted:
            words += reply.apply_mail(self.app, self.renderer, ticket, message, mail)
        elif mail is not None:
            words += notify.forgery_warning(
                self.app,
                self.renderer,
                ticket,
                agent=Address(mail.agent.email, mail.agent.name),
                reason=mail.verdict.how,
                cause=message,
                at=now,
            )
        stranger = stored.event == "non_participant"
        if stored.event == "customer_reply" or (
            stranger and ticket.status not in ("resolved", "closed")
        ):
            words += notify.notify_customer_reply(
                self.app,
                self.renderer,
                rules,
                ticket,
                cause=message,
                author=stored.actor,
                at=now,
                non_participant=stranger,
            )
        words += notify.notify_assigned(
            self.app,
            self.renderer,
            rules,
            ticket,
            previous=previous,
            cause=message,
            by_self=mail.agent.email if mail is not None and mail.trusted else None,
            at=now,
        )
        return Outcome(words)
