"""The printable reminder letter (PDF, Typst): the same text as the e-mail would carry."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import typst

from facturo.customers.models import Customer
from facturo.organizations.models import Organization

TEMPLATE = (Path(__file__).parent / "templates" / "dunning" / "letter.typ").read_bytes()
_local = threading.local()


def _compiler() -> typst.Compiler:
    compiler = getattr(_local, "compiler", None)
    if compiler is None:
        compiler = typst.Compiler(ignore_system_fonts=True)
        _local.compiler = compiler
    return compiler


def _address(lines: list[str]) -> list[str]:
    return [line for line in lines if line and line.strip()]


def render_letter(
    org: Organization,
    customer: Customer,
    *,
    subject: str,
    body: str,
    place_date: str,
    language: str,
    qr_svg: str = "",
) -> bytes:
    paragraphs = [p.split("\n") for p in body.strip().split("\n\n") if p.strip()]
    data = {
        "lang": language,
        "sender": _address(
            [
                org.legal_name or org.name,
                org.address_line1,
                org.address_line2,
                f"{org.postcode} {org.city}",
                org.email,
                org.phone,
            ]
        ),
        "recipient": _address(
            [
                customer.name,
                customer.address_line1,
                customer.address_line2,
                f"{customer.postcode} {customer.city}",
            ]
        ),
        "place_date": place_date,
        "subject": subject,
        "paragraphs": paragraphs,
    }
    inputs = {"data": json.dumps(data, ensure_ascii=False)}
    if qr_svg:
        inputs["qr"] = qr_svg
    pdf = _compiler().compile(TEMPLATE, format="pdf", sys_inputs=inputs)
    assert isinstance(pdf, bytes)
    return pdf
