"""Metrics measured inside a process (not read from the database): the worker's timing.

Kept apart from :mod:`maild.ops.metrics` so the worker imports prometheus-client only, not the
web server. See that module for how several worker processes are gathered.
"""

from __future__ import annotations

from prometheus_client import Histogram

# Observed by the worker (maild.worker): one inbound message, from claim to commit.
PROCESSING_SECONDS = Histogram(
    "ticketd_processing_seconds",
    "Time the worker took to process one inbound message",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)
