"""The rule engine: the admin's YAML rules turned into decisions about tickets.

- ``schema``: the frozen dataclasses (agents, teams, rules, conditions, actions, SLA policies,
  business hours, ``TicketView``).
- ``loader``: reading and validating the rules folder (``load_rules``, ``RulesError``).
- ``conditions``: the condition language, compiled at load and tested per message.
- ``policies``: the YAML shape of business hours and SLA policies.
- ``engine``: ``RuleSet.evaluate`` and the ``Decision`` it returns, with its trace.
- ``assign``: round robin and least open assignment, inside the caller's transaction.
- ``reload``: ``RulesHolder``, the running rule set, replaced only by a valid one.

The engine only decides; the worker applies a decision and records each action as an audit event.
"""
