"""Issuing invoices and credit notes against SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError, IntegrityError, transaction

from facturo.core.errors import BusinessError, ConflictError
from facturo.foundation.db import current_alias
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, InvoiceLine, Status
from tests.factories import lines, make_customer, make_org

TODAY = dt.datetime.now(tz=dt.UTC).astimezone(ZoneInfo("Europe/Paris")).date()


def test_issue_allocates_number_and_freezes_totals(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    draft = invoicing.create_draft(ctx, customer.id, lines(3))
    assert draft.number is None
    issued = invoicing.issue_invoice(ctx, draft.id, render=False)
    assert issued.number == f"FA-{TODAY.year}-00001"
    assert issued.status == Status.ISSUED
    # 1×99.99 + 2×100.99 + 3×101.99 = 607.94; VAT 20 % = 121.588 → 121.59 (half up)
    assert issued.total_excl_vat == Decimal("607.94")
    assert issued.total_vat == Decimal("121.59")
    assert issued.total_incl_vat == Decimal("729.53")
    assert issued.snapshot["totals"]["due_payable"] == "729.53"
    second = invoicing.issue_invoice(
        ctx, invoicing.create_draft(ctx, customer.id, lines(1)).id, render=False
    )
    assert second.number == f"FA-{TODAY.year}-00002"


def test_double_issue_is_refused_and_changes_nothing(engine: str) -> None:
    _, ctx = make_org()
    draft = invoicing.create_draft(ctx, make_customer(ctx).id, lines(1))
    first = invoicing.issue_invoice(ctx, draft.id, render=False)
    with pytest.raises(ConflictError) as err:
        invoicing.issue_invoice(ctx, draft.id, render=False)
    assert err.value.code == "invoice.already_issued"
    assert Invoice.objects.get(pk=draft.id).number == first.number
    assert first.series is not None
    assert first.series.counters.get().last_value == 1


def test_empty_draft_and_negative_quantity_are_refused(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    empty = invoicing.create_draft(ctx, customer.id, [])
    with pytest.raises(BusinessError) as err:
        invoicing.issue_invoice(ctx, empty.id, render=False)
    assert err.value.code == "invoice.empty"
    with pytest.raises(BusinessError) as err:
        invoicing.create_draft(
            ctx, customer.id, [{"description": "x", "quantity": "-2", "unit_price": "10"}]
        )
    assert err.value.code == "invoice.negative_quantity"
    assert err.value.field == "lines.1.quantity"
    assert Invoice.objects.filter(organization=ctx.organization).count() == 1


def test_issued_invoice_cannot_be_edited_or_deleted(engine: str) -> None:
    _, ctx = make_org()
    invoice = invoicing.issue_invoice(
        ctx, invoicing.create_draft(ctx, make_customer(ctx).id, lines(2)).id, render=False
    )
    with pytest.raises(ConflictError):
        invoicing.update_draft(ctx, invoice.id, free_text="changed")
    with pytest.raises(ConflictError):
        invoicing.delete_draft(ctx, invoice.id)
    # Even bypassing the services, the database refuses (UI, API, admin, scripts alike).
    for attempt in (
        lambda: Invoice.objects.filter(pk=invoice.id).update(total_incl_vat=Decimal(1)),
        lambda: Invoice.objects.filter(pk=invoice.id).delete(),
        lambda: InvoiceLine.objects.filter(invoice=invoice).update(quantity=Decimal(9)),
    ):
        with (
            pytest.raises((IntegrityError, DatabaseError)),
            transaction.atomic(using=current_alias()),
        ):
            attempt()
    assert Invoice.objects.get(pk=invoice.id).total_incl_vat == invoice.total_incl_vat


def test_rolled_back_issue_gives_its_number_back(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    draft = invoicing.create_draft(ctx, customer.id, lines(1))

    class Boom(Exception):
        pass

    def issue_then_fail() -> None:
        with transaction.atomic(using=current_alias()):
            invoicing.issue_invoice(ctx, draft.id, render=False)
            raise Boom

    with pytest.raises(Boom):
        issue_then_fail()
    assert Invoice.objects.get(pk=draft.id).number is None
    issued = invoicing.issue_invoice(ctx, draft.id, render=False)
    assert issued.number == f"FA-{TODAY.year}-00001"


def test_backdating_is_refused(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    invoicing.issue_invoice(
        ctx, invoicing.create_draft(ctx, customer.id, lines(1)).id, render=False
    )
    late = invoicing.create_draft(ctx, customer.id, lines(1))
    with pytest.raises(BusinessError) as err:
        invoicing.issue_invoice(ctx, late.id, issue_date=TODAY - dt.timedelta(days=3), render=False)
    assert err.value.code == "numbering.backdated"


def test_credit_notes_full_partial_and_too_large(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    invoice = invoicing.issue_invoice(
        ctx, invoicing.create_draft(ctx, customer.id, lines(2)).id, render=False
    )
    partial = invoicing.create_credit_note(
        ctx,
        invoice.id,
        lines=[
            {
                "description": "Geste commercial",
                "quantity": "1",
                "unit_price": "50",
                "vat_rate": "20",
            }
        ],
        reason="Retard de livraison",
        issue=True,
        render=False,
    )
    assert partial.number == f"AV-{TODAY.year}-00001"
    assert partial.total_incl_vat == Decimal("60.00")
    assert partial.snapshot["preceding_invoices"] == [
        {"number": invoice.number, "issue_date": invoice.issue_date.isoformat()}
    ]
    with pytest.raises(BusinessError) as err:
        invoicing.create_credit_note(
            ctx, invoice.id, issue=True, render=False
        )  # full: exceeds remaining
    assert err.value.code == "credit_note.exceeds_invoice"
    assert Invoice.objects.filter(credited_invoice=invoice, status=Status.ISSUED).count() == 1
    # crediting the rest cancels the invoice
    rest = (invoice.total_excl_vat or Decimal(0)) - Decimal(50)
    invoicing.create_credit_note(
        ctx,
        invoice.id,
        lines=[{"description": "Solde", "quantity": "1", "unit_price": rest, "vat_rate": "20"}],
        issue=True,
        render=False,
    )
    assert Invoice.objects.get(pk=invoice.id).status == Status.CREDITED


def test_full_credit_note_mirrors_the_invoice(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    draft = invoicing.create_draft(ctx, customer.id, lines(4), document_discount_percent="7.5")
    invoice = invoicing.issue_invoice(ctx, draft.id, render=False)
    note = invoicing.create_credit_note(
        ctx, invoice.id, reason="Annulation", issue=True, render=False
    )
    assert note.snapshot["totals"] == invoice.snapshot["totals"]
    assert note.snapshot["type_code"] == "381"


def test_deposit_then_final_invoice(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    deposit = invoicing.issue_invoice(
        ctx,
        invoicing.create_draft(
            ctx,
            customer.id,
            [
                {
                    "description": "Acompte 30 %",
                    "quantity": "1",
                    "unit_price": "300",
                    "vat_rate": "20",
                }
            ],
            kind="deposit",
        ).id,
        render=False,
    )
    assert deposit.number == f"AC-{TODAY.year}-00001"
    final = invoicing.create_draft(
        ctx,
        customer.id,
        [{"description": "Site complet", "quantity": "1", "unit_price": "1000", "vat_rate": "20"}],
    )
    invoicing.deduct_deposit(ctx, final.id, deposit.id)
    with pytest.raises(ConflictError):
        invoicing.deduct_deposit(ctx, final.id, deposit.id)
    final = invoicing.issue_invoice(ctx, final.id, render=False)
    assert final.total_excl_vat == Decimal("700.00")
    assert final.total_vat == Decimal("140.00")
    assert final.snapshot["operation_nature"] == "S4"
    assert final.snapshot["preceding_invoices"][0]["number"] == deposit.number


def test_vat_cases_need_the_right_identifiers(engine: str) -> None:
    _, ctx = make_org()
    german = make_customer(
        ctx,
        name="Müller GmbH",
        siren="",
        vat_number="",
        country_code="DE",
        postcode="10117",
        city="Berlin",
    )
    draft = invoicing.create_draft(
        ctx,
        german.id,
        [
            {
                "description": "Conseil",
                "quantity": "1",
                "unit_price": "500",
                "vat_category": "AE",
                "vat_rate": "0",
            }
        ],
    )
    with pytest.raises(BusinessError) as err:
        invoicing.issue_invoice(ctx, draft.id, render=False)
    assert err.value.code == "invoice.buyer_vat_required"
    with pytest.raises(BusinessError) as err:
        invoicing.create_draft(
            ctx,
            german.id,
            [
                {
                    "description": "x",
                    "quantity": "1",
                    "unit_price": "1",
                    "vat_category": "AE",
                    "vat_rate": "20",
                }
            ],
        )
    assert err.value.code == "tax.rate_must_be_zero"


def test_control_characters_never_reach_a_document(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    with pytest.raises(BusinessError) as err:
        invoicing.create_draft(ctx, customer.id, [{"description": "Pain\x00", "quantity": "1",
                                                   "unit_price": "1"}])  # fmt: skip
    assert err.value.code == "input.control_character"
    assert err.value.field == "lines.1.description"
    draft = invoicing.create_draft(ctx, customer.id, lines(1))
    assert draft.document_discount_percent == Decimal(0)  # a Decimal, straight from create
    assert invoicing.draft_totals(draft).tax_exclusive == Decimal("99.99")


def test_document_discount_reason_follows_the_language(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    fr = invoicing.issue_invoice(
        ctx,
        invoicing.create_draft(ctx, customer.id, lines(1), document_discount_percent="7.5").id,
        render=False,
    )
    en = invoicing.issue_invoice(
        ctx,
        invoicing.create_draft(
            ctx, customer.id, lines(1), document_discount_percent="7.5", language="en"
        ).id,
        render=False,
    )
    assert fr.snapshot["totals"]["allowances"][0]["reason"] == "Remise 7,5 %"
    assert en.snapshot["totals"]["allowances"][0]["reason"] == "Discount 7.5 %"
