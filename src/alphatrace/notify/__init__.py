"""Notifications: decisions pushed to webhooks, Slack and in-process callbacks.

The policy's `notify` section names the targets (`config`); the transaction that appends
decision records also writes one pending delivery per matching target (`outbox`), so nothing
is lost between commit and send; a dispatcher (`dispatcher`) delivers them at least once with
backoff, signed (`signing`), and records every attempt. See docs/governance.md §Notifications.
"""
