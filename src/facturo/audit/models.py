from django.db import models


class AuditEvent(models.Model):
    """Who did what, when, from where: append-only and hash-chained per organization."""

    organization_id = models.UUIDField(db_index=True)
    seq = models.PositiveBigIntegerField()
    at = models.DateTimeField()
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization_id", "seq"], name="audit_unique_seq")
        ]
        ordering = ["organization_id", "seq"]

    def payload(self) -> dict[str, object]:
        return {
            "organization_id": str(self.organization_id),
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "ip": self.ip,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "before": self.before,
            "after": self.after,
        }


class AuditChainHead(models.Model):
    """The last link of an organization's chain; locked to append."""

    organization_id = models.UUIDField(primary_key=True)
    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
