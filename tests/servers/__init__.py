"""Real servers for tests: the ticketd daemon, a capturing SMTP relay, Dovecot."""
