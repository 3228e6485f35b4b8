from django.db import models

from facturo.foundation.models import UUIDModel


class StoredDocument(UUIDModel):
    """Bytes of a document built once at issue (PDF/A-3 with Factur-X, or XML), never rebuilt,
    so every download is byte-identical to what the customer received."""

    organization_id = models.UUIDField(db_index=True)
    owner_id = models.UUIDField(db_index=True)  # the invoice or credit note
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner_id", "content_type"], name="one_doc_per_type")
        ]
