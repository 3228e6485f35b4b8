"""E-invoices: Factur-X / CII (EN 16931 profile) writing and local validation."""

from .cii import build_cii
from .validate import EInvoiceXMLError, Finding, ValidationReport, validate_cii

__all__ = ["EInvoiceXMLError", "Finding", "ValidationReport", "build_cii", "validate_cii"]
