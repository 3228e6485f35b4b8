from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.foundation.models import UUIDModel


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled before sending")


class OutboxEmail(UUIDModel):
    """An e-mail written in the transaction that causes it and delivered later by the worker."""

    organization_id = models.UUIDField(db_index=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    subject_id = models.UUIDField(null=True, blank=True, db_index=True)  # e.g. the invoice
    from_email = models.CharField(max_length=300)
    to = models.JSONField()
    cc = models.JSONField(default=list)
    reply_to = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    attachment_ids = models.JSONField(default=list)  # StoredDocument ids
    status = models.CharField(
        max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    # Set by the worker that claimed the row; with next_attempt_at as the end of its lease,
    # it makes marking conditional on still holding the claim (see deliver_pending).
    claim_token = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]

    @property
    def message_id(self) -> str:
        return f"<{self.id}@facturo>"
