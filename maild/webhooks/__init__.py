"""Telling other systems what happens to tickets: signed webhooks, Slack and API-channel replies.

``events`` maps audit actions to webhook events, ``payload`` builds their documented JSON,
``targets`` reads the ``webhooks:`` config and the channels that answer over HTTP, ``queue`` turns
pending events into deliveries, ``guard`` refuses private destinations and ``sender`` delivers.
"""
