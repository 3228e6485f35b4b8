"""Periodic API housekeeping (autodiscovered by the Huey consumer)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .idempotency import purge_expired


@db_periodic_task(crontab(minute="17"))
def purge_idempotency_keys() -> None:
    """Hourly: forget Idempotency-Key records older than 24 h."""
    purge_expired()
