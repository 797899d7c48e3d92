"""Errors a user can act on. The CLI prints them as one line on stderr, without a traceback."""

from __future__ import annotations


class TicketdError(Exception):
    """Base class: a problem with a clear message for the operator."""

    exit_code = 1


class ConfigError(TicketdError):
    """config.yaml (or a file it names) is wrong: the message names the file and the key path."""

    exit_code = 78  # EX_CONFIG


class SpoolError(TicketdError):
    """The spool could not be written: the sender must retry later."""

    exit_code = 75  # EX_TEMPFAIL


class TooLargeError(TicketdError):
    """A message over ``smtp_in.max_message_bytes``: it can never be accepted."""

    exit_code = 65  # EX_DATAERR


class NotFoundError(TicketdError):
    """A ticket, spool entry or outbox entry named on the command line does not exist."""
