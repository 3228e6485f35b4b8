"""Tables of the REST API: the stored outcome of requests sent with an ``Idempotency-Key``."""

from __future__ import annotations

from django.db import models

from facturo.organizations.models import Organization


class IdempotencyRecord(models.Model):
    """One ``Idempotency-Key`` of one organization (see ``facturo.api.idempotency``).

    The row is inserted before the request runs (``status_code`` still null: in progress);
    the unique constraint is what stops two concurrent requests with the same key from both
    running. A successful response is stored and replayed for 24 hours.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="idempotency_records"
    )
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    body_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"], name="idempotency_unique_key_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
