"""Revoked portal links: every link to an invoice signed before ``revoked_before`` is dead."""

from __future__ import annotations

from django.db import models

from facturo.invoicing.models import Invoice


class LinkRevocation(models.Model):
    invoice = models.OneToOneField(
        Invoice, on_delete=models.CASCADE, related_name="portal_revocation"
    )
    revoked_before = models.DateTimeField()
    revoked_by = models.CharField(max_length=255, blank=True)
