"""ticketd."""
