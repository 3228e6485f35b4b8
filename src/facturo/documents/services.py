"""Build and store the documents of an issued invoice: Factur-X XML + PDF/A-3."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from facturo.core.document import InvoiceDocument
from facturo.foundation.db import current_alias

from .models import StoredDocument

PDF = "application/pdf"
XML = "application/xml"


@dataclass(frozen=True)
class Branding:
    logo: bytes | None = None
    logo_mime: str = ""
    accent: str = "#1f4e79"


def build(doc: InvoiceDocument, branding: Branding) -> tuple[bytes, bytes]:
    """Return (pdf, xml): the PDF/A-3 with the Factur-X XML embedded, and the XML itself."""
    from facturo.formats.einvoice.cii import build_cii

    from .pdf.render import embed_facturx, render_pdf

    xml = build_cii(doc)
    pdf = render_pdf(doc, logo=branding.logo, logo_mime=branding.logo_mime, accent=branding.accent)
    return embed_facturx(pdf, xml), xml


def store(
    organization_id: uuid.UUID, owner_id: uuid.UUID, number: str, pdf: bytes, xml: bytes
) -> None:
    alias = current_alias()
    StoredDocument.objects.using(alias).bulk_create(
        [
            StoredDocument(
                organization_id=organization_id,
                owner_id=owner_id,
                filename=f"{number}.pdf",
                content_type=PDF,
                content=pdf,
                sha256=hashlib.sha256(pdf).hexdigest(),
            ),
            StoredDocument(
                organization_id=organization_id,
                owner_id=owner_id,
                filename=f"{number}.xml",
                content_type=XML,
                content=xml,
                sha256=hashlib.sha256(xml).hexdigest(),
            ),
        ]
    )


def fetch(organization_id: uuid.UUID, owner_id: uuid.UUID, content_type: str) -> StoredDocument:
    return StoredDocument.objects.get(
        organization_id=organization_id, owner_id=owner_id, content_type=content_type
    )
