"""Background exports (autodiscovered by the Huey consumer): thin, each calls one service;
safe to run twice (a finished job is left as it is)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from facturo.audit.services import SYSTEM
from facturo.organizations.context import Ctx
from facturo.organizations.models import Organization

from . import exports
from .models import ExportJob


@db_task()
def run_export_job(organization_id: str, job_id: str) -> None:
    org = Organization.objects.get(pk=organization_id)
    exports.run_job(Ctx(org, "owner", SYSTEM), job_id)


@db_periodic_task(crontab(minute="*"))
def run_pending_exports() -> None:
    """Every minute: jobs whose enqueue was lost (e.g. the worker restarted)."""
    stale = timezone.now() - dt.timedelta(minutes=1)
    for job in ExportJob.objects.filter(status="pending", created_at__lt=stale)[:20]:
        exports.run_job(Ctx(job.organization, "owner", SYSTEM), job.pk)
