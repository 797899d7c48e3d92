"""Service levels and the ticket lifecycle: business hours, due times, escalations, auto-close.

``hours`` does calendar arithmetic, ``due`` picks a ticket's policy and computes its due times,
``lifecycle`` is the one way to change a ticket's status, ``sweep`` is the periodic job behind
``ticketd sla check``, ``survey`` reads satisfaction replies, and ``hook`` is the worker hook.
"""
