"""Periodic jobs run by the daemon (SLA sweep, digests): the runner in ``runner.py``."""
