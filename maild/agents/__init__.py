"""Agents work from their own mail client: trust, commands, replies, notes and notifications.

``trust`` decides whether a mail claiming an agent's From is theirs, ``commands`` reads the
``#status``-style lines at the top of a reply, ``reply`` applies a trusted mail to its ticket and
answers the customer, ``notify`` mails agents (assignment, customer replies, command errors,
forgery warnings), and ``desk`` ties them to the worker (see its docstring for the policies).
"""
