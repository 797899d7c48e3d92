"""ticketd: a self-hosted, email-first help-desk daemon."""

__version__ = "0.1.0"
