"""Invoices: list, draft editor with live totals, issue, issued page, PDF, e-mail, credit notes.

Totals are never computed here nor in the browser: the editor posts its form to
:func:`invoice_totals`, which builds unsaved lines and asks ``invoicing.draft_totals`` — the
same core computation the issued invoice will freeze.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin

from facturo.catalog import selectors as catalog
from facturo.catalog.models import UNIT_CHOICES, VAT_CATEGORY_CHOICES, Product
from facturo.catalog.services import as_decimal
from facturo.core.document import from_dict
from facturo.core.errors import BusinessError, ConflictError, NotFound
from facturo.core.errors import _ as mark
from facturo.core.totals import Totals
from facturo.customers.models import Customer
from facturo.documents import services as documents
from facturo.documents.models import StoredDocument
from facturo.invoicing import selectors
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, InvoiceLine, Status
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import DocumentKind, VatRegime
from facturo.web.forms import CreditNoteForm, InvoiceHeaderForm, SendForm

from . import base
from .base import Amount, attach_error, member_view, message_of, page, paginate, percent, plain

LINE_KEYS = (
    "product",
    "description",
    "quantity",
    "unit_code",
    "unit_price",
    "discount_percent",
    "vat_category",
    "vat_rate",
)
HEADER_KEYS = (
    "purchase_order",
    "buyer_reference",
    "document_discount_percent",
    "delivery_date",
    "due_date",
    "payment_terms_kind",
    "payment_terms_days",
    "language",
    "free_text",
)
ROW = re.compile(r"^lines-(\d{1,4})-[a-z_]+$")
MAX_ROWS = invoicing.MAX_LINES
UNIT_LABELS = dict(UNIT_CHOICES)


# --- the editor's line rows ----------------------------------------------------------------


@dataclass
class LineRow:
    """One row of the editor as typed (strings), with its errors and its net amount."""

    index: int
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    net: Amount | None = None

    @property
    def blank(self) -> bool:
        v = self.values
        return not (v["description"] or v["product"] or v["unit_price"])


def blank_row(ctx: Ctx, index: int) -> LineRow:
    franchise = ctx.organization.vat_regime == VatRegime.FRANCHISE
    values = dict.fromkeys(LINE_KEYS, "")
    values.update(
        quantity="1",
        unit_code="C62",
        vat_category="E" if franchise else "S",
        vat_rate="0" if franchise else "20",
    )
    return LineRow(index, values)


def rows_from_post(data: Mapping[str, Any]) -> list[LineRow]:
    indexes = sorted({int(m.group(1)) for key in data if (m := ROW.match(key))})[:MAX_ROWS]
    return [
        LineRow(i, {k: str(data.get(f"lines-{i}-{k}", "")).strip()[:500] for k in LINE_KEYS})
        for i in indexes
    ]


def rows_from_invoice(invoice: Invoice) -> list[LineRow]:
    rows = []
    lines = invoice.lines.filter(deducted_invoice__isnull=True).order_by("position")
    for i, line in enumerate(lines):
        rows.append(
            LineRow(
                i,
                {
                    "product": str(line.product_id or ""),
                    "description": line.description,
                    "quantity": plain(line.quantity),
                    "unit_code": line.unit_code,
                    "unit_price": plain(line.unit_price),
                    "discount_percent": plain(line.discount_percent)
                    if line.discount_percent
                    else "",
                    "vat_category": line.vat_category,
                    "vat_rate": plain(line.vat_rate),
                },
            )
        )
    return rows


def service_lines(rows: list[LineRow]) -> tuple[list[dict[str, Any]], list[LineRow]]:
    """The non-blank rows as the service's line dictionaries (position = index + 1)."""
    used = [row for row in rows if not row.blank]
    result: list[dict[str, Any]] = []
    for position, row in enumerate(used, start=1):
        data: dict[str, Any] = {k: v for k, v in row.values.items() if v and k != "product"}
        if row.values["product"]:
            try:
                data["product_id"] = uuid.UUID(row.values["product"])
            except ValueError:
                raise BusinessError(
                    "invoice.unknown_product",
                    mark("Line %(position)s: unknown product."),
                    field=f"lines.{position}.product_id",
                    position=position,
                ) from None
        result.append(data)
    return result, used


def place_line_error(err: BusinessError, used: list[LineRow]) -> bool:
    """Put an error about ``lines.N.field`` beside that field of row N; False if not a line."""
    return base.place_line_error(err, used, LINE_KEYS)


# --- live totals ---------------------------------------------------------------------------


@dataclass
class Preview:
    totals: Totals | None
    currency: str
    errors: list[str]
    deductions: list[tuple[InvoiceLine, Amount]]

    @property
    def vat_groups(self) -> list[dict[str, Any]]:
        if self.totals is None:
            return []
        return [
            {
                "category": g.category.value,
                "rate": percent(g.rate),
                "base": Amount(g.taxable_amount, self.currency),
                "vat": Amount(g.tax_amount, self.currency),
            }
            for g in self.totals.vat_groups
        ]

    def amount(self, name: str) -> Amount | None:
        return Amount(getattr(self.totals, name), self.currency) if self.totals else None

    @property
    def excl_vat(self) -> Amount | None:
        return self.amount("tax_exclusive")

    @property
    def vat(self) -> Amount | None:
        return self.amount("tax_total")

    @property
    def incl_vat(self) -> Amount | None:
        return self.amount("tax_inclusive")

    @property
    def lines_total(self) -> Amount | None:
        return self.amount("line_total")

    @property
    def allowances(self) -> Amount | None:
        return self.amount("allowance_total") if self.totals and self.totals.allowances else None


def preview(
    ctx: Ctx, rows: list[LineRow], currency: str, discount: str, invoice: Invoice | None
) -> Preview:
    """Unsaved lines through the core totals; an error is reported, never guessed around."""
    errors: list[str] = []
    try:
        data, used = service_lines(rows)
    except BusinessError as err:
        return Preview(None, currency, [message_of(err)], [])
    ids = [d["product_id"] for d in data if "product_id" in d]
    products = {p.pk: p for p in Product.objects.filter(organization=ctx.organization, pk__in=ids)}
    lines: list[InvoiceLine] = []
    shell = Invoice(currency=currency, document_discount_percent=Decimal(0))
    for position, (values, row) in enumerate(zip(data, used, strict=True), start=1):
        product = products.get(values["product_id"]) if "product_id" in values else None
        if "product_id" in values and product is None:
            row.errors["product"] = message = _("Line %(position)s: unknown product.") % {
                "position": position
            }
            errors.append(message)
            continue

        def pick(
            key: str,
            default: Any,
            values: dict[str, Any] = values,
            product: Product | None = product,
        ) -> Any:
            if key in values:
                return values[key]
            return getattr(product, key) if product is not None else default

        try:
            line = InvoiceLine(
                position=position,
                description=str(pick("description", "")),
                quantity=as_decimal(pick("quantity", "1"), f"lines.{position}.quantity"),
                unit_price=as_decimal(pick("unit_price", "0"), f"lines.{position}.unit_price"),
                discount_percent=as_decimal(
                    values.get("discount_percent", "0"), f"lines.{position}.discount_percent"
                ),
                vat_category=str(pick("vat_category", "S")),
                vat_rate=as_decimal(pick("vat_rate", "20"), f"lines.{position}.vat_rate"),
            )
            amounts = invoicing.draft_totals(shell, [line]).lines[0]
        except BusinessError as err:
            if err.field and not err.field.startswith("lines."):
                err.field = f"lines.{position}.{err.field}"
            place_line_error(err, used)
            errors.append(
                _("Line %(position)s: %(error)s") % {"position": position, "error": message_of(err)}
            )
            continue
        row.net = Amount(amounts.net_amount, currency)
        lines.append(line)
    deduction_lines: list[InvoiceLine] = []
    if invoice is not None:
        deduction_lines = list(invoice.lines.filter(deducted_invoice__isnull=False))
    try:
        shell.document_discount_percent = as_decimal(discount or "0", "document_discount_percent")
        totals = invoicing.draft_totals(shell, lines + deduction_lines) if not errors else None
    except BusinessError as err:
        return Preview(None, currency, [*errors, message_of(err)], [])
    deductions = []
    if totals is not None:
        offset = len(lines)
        deductions = [
            (line, Amount(totals.lines[offset + i].net_amount, currency))
            for i, line in enumerate(deduction_lines)
        ]
    return Preview(totals, currency, errors, deductions)


def _currency(ctx: Ctx, invoice: Invoice | None, customer_id: str) -> str:
    if invoice is not None:
        return invoice.currency
    try:
        customer = Customer.objects.filter(
            organization=ctx.organization, pk=uuid.UUID(customer_id)
        ).first()
    except ValueError:
        customer = None
    return customer.currency if customer else ctx.organization.currency


def _totals_response(request: HttpRequest, ctx: Ctx, invoice: Invoice | None) -> HttpResponse:
    rows = rows_from_post(request.POST)
    currency = _currency(ctx, invoice, request.POST.get("customer", ""))
    result = preview(
        ctx, rows, currency, request.POST.get("document_discount_percent", ""), invoice
    )
    return page(
        request, ctx, "web/invoices/_totals.html", {"preview": result, "rows": rows, "oob": True}
    )


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def invoice_totals_new(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    return _totals_response(request, ctx, None)


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def invoice_totals(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    invoice = invoicing.get_invoice(ctx, pk)
    return _totals_response(request, ctx, invoice if invoice.is_draft else None)


# --- list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRow:
    invoice: Invoice
    total: Amount


def invoice_rows(invoices: list[Invoice]) -> list[InvoiceRow]:
    drafts = [inv for inv in invoices if inv.is_draft]
    prefetch_related_objects(drafts, "lines")
    rows = []
    for inv in invoices:
        total: Decimal | None = inv.total_incl_vat
        if inv.is_draft:
            try:
                total = invoicing.draft_totals(inv).tax_inclusive
            except BusinessError:
                total = None
        rows.append(InvoiceRow(inv, Amount(total, inv.currency)))
    return rows


@member_view(methods=("GET",))
def invoice_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in Status.values:
        status = ""
    page_obj = paginate(request, selectors.invoices(ctx, status=status))
    return page(
        request,
        ctx,
        "web/invoices/list.html",
        {
            "page_obj": page_obj,
            "rows": invoice_rows(list(page_obj)),
            "status": status,
            "statuses": Status.choices,
            "selectable": status == Status.DRAFT and ctx.can(Perm.ISSUE_INVOICES),
        },
    )


# --- editor --------------------------------------------------------------------------------


def _header_initial(invoice: Invoice) -> dict[str, Any]:
    data: dict[str, Any] = {k: getattr(invoice, k) for k in HEADER_KEYS}
    data["customer"] = invoice.customer_id
    data["document_discount_percent"] = (
        plain(invoice.document_discount_percent) if invoice.document_discount_percent else ""
    )
    return data


def _already_issued(request: HttpRequest, ctx: Ctx, invoice_id: Any) -> HttpResponse:
    number = (
        Invoice.objects.filter(organization=ctx.organization, pk=invoice_id)
        .values_list("number", flat=True)
        .first()
    )
    messages.info(request, _("This invoice was already issued as %(number)s.") % {"number": number})
    return redirect("web:invoice_detail", pk=invoice_id)


def _issue(
    request: HttpRequest, ctx: Ctx, invoice_id: Any, issue_date: dt.date | None = None
) -> HttpResponse:
    try:
        invoice = invoicing.issue_invoice(ctx, invoice_id, issue_date=issue_date)
    except ConflictError as err:
        if err.code == "invoice.already_issued":
            return _already_issued(request, ctx, invoice_id)
        messages.error(request, message_of(err))
    except NotFound:
        raise
    except BusinessError as err:
        messages.error(request, message_of(err))
    else:
        messages.success(request, _("Issued as %(number)s.") % {"number": invoice.number})
    return redirect("web:invoice_detail", pk=invoice_id)


def _deposits(ctx: Ctx, invoice: Invoice | None) -> list[Invoice]:
    """Issued deposit invoices of the draft's customer not yet deducted anywhere."""
    if invoice is None or invoice.kind == DocumentKind.DEPOSIT:
        return []
    return list(
        Invoice.objects.filter(
            organization=ctx.organization,
            customer=invoice.customer,
            kind=DocumentKind.DEPOSIT,
            currency=invoice.currency,
        )
        .exclude(status=Status.DRAFT)
        .exclude(deducted_in__isnull=False)
        .order_by("issue_date")
    )


def _editor(
    request: HttpRequest, ctx: Ctx, invoice: Invoice | None, initial: dict[str, Any]
) -> HttpResponse:
    form = InvoiceHeaderForm(ctx, request.POST or None, initial=initial)
    if invoice is not None:
        del form.fields["kind"]
    rows: list[LineRow]
    status = 200
    if request.method == "POST":
        rows = rows_from_post(request.POST)
        action = request.POST.get("action", "save")
        if form.is_valid():
            cleaned = form.cleaned_data
            header = {k: cleaned.get(k) for k in HEADER_KEYS}
            header["document_discount_percent"] = cleaned["document_discount_percent"] or "0"
            used: list[LineRow] = []
            try:
                lines, used = service_lines(rows)
                if invoice is None:
                    invoice = invoicing.create_draft(
                        ctx,
                        cleaned["customer"].pk,
                        lines,
                        kind=cleaned.get("kind") or DocumentKind.INVOICE,
                        **header,
                    )
                else:
                    invoice = invoicing.update_draft(
                        ctx, invoice.pk, lines=lines, customer_id=cleaned["customer"].pk, **header
                    )
            except ConflictError as err:
                if err.code == "invoice.already_issued" and invoice is not None:
                    return _already_issued(request, ctx, invoice.pk)
                attach_error(form, err)
            except NotFound:
                raise
            except BusinessError as err:
                if not place_line_error(err, used):
                    attach_error(form, err, {"customer_id": "customer"})
            else:
                if action == "issue":
                    return _issue(request, ctx, invoice.pk, cleaned.get("issue_date"))
                if action == "deduct":
                    return _deduct(request, ctx, invoice, request.POST.get("deposit", ""))
                messages.success(request, _("Draft saved."))
                return redirect("web:invoice_detail", pk=invoice.pk)
        status = 200
    else:
        rows = rows_from_invoice(invoice) if invoice is not None else []
    if not rows:
        rows = [blank_row(ctx, 0)]
    currency = _currency(ctx, invoice, str(form["customer"].value() or ""))
    result = preview(
        ctx, rows, currency, str(form["document_discount_percent"].value() or ""), invoice
    )
    products = list(catalog.products(ctx)[:500])
    return page(
        request,
        ctx,
        "web/invoices/editor.html",
        {
            "form": form,
            "invoice": invoice,
            "rows": rows,
            "preview": result,
            "next_index": max(r.index for r in rows) + 1,
            "template_row": blank_row(ctx, 0),
            "products": [(p, plain(p.unit_price), plain(p.vat_rate)) for p in products],
            "units": UNIT_CHOICES,
            "categories": VAT_CATEGORY_CHOICES,
            "deposits": _deposits(ctx, invoice),
            "has_customers": Customer.objects.filter(organization=ctx.organization).exists(),
        },
        status=status,
    )


def _deduct(request: HttpRequest, ctx: Ctx, invoice: Invoice, deposit: str) -> HttpResponse:
    try:
        deposit_id = uuid.UUID(deposit)
    except ValueError:
        messages.error(request, _("Choose a deposit invoice."))
        return redirect("web:invoice_detail", pk=invoice.pk)
    try:
        invoicing.deduct_deposit(ctx, invoice.pk, deposit_id)
    except NotFound:
        raise
    except BusinessError as err:
        messages.error(request, message_of(err))
    else:
        messages.success(request, _("Deposit deducted."))
    return redirect("web:invoice_detail", pk=invoice.pk)


@member_view(get=Perm.EDIT_INVOICES, post=Perm.EDIT_INVOICES)
def invoice_create(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    initial: dict[str, Any] = {"kind": DocumentKind.INVOICE, "language": "fr"}
    wanted = request.GET.get("customer", "")
    try:
        customer = Customer.objects.filter(
            organization=ctx.organization, pk=uuid.UUID(wanted)
        ).first()
    except ValueError:
        customer = None
    if customer is not None:
        initial.update(customer=customer.pk, language=customer.language)
    if request.GET.get("kind") == DocumentKind.DEPOSIT:
        initial["kind"] = DocumentKind.DEPOSIT
    return _editor(request, ctx, None, initial)


@member_view(post=Perm.EDIT_INVOICES)
def invoice_detail(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    invoice = invoicing.get_invoice(ctx, pk)
    if not invoice.is_draft:
        if request.method == "POST":
            if request.POST.get("action") == "issue":
                return _already_issued(request, ctx, invoice.pk)
            err = ConflictError(
                "invoice.already_issued",
                mark(
                    "Invoice %(number)s is issued and can no longer be changed or deleted; "
                    "create a credit note to correct or cancel it."
                ),
                number=invoice.number,
            )
            return document_page(request, ctx, invoice, error=message_of(err), status=409)
        return document_page(request, ctx, invoice)
    if request.method == "GET" and not ctx.can(Perm.EDIT_INVOICES):
        return document_page(request, ctx, invoice)
    return _editor(request, ctx, invoice, _header_initial(invoice))


@member_view(get=None, post=Perm.ISSUE_INVOICES, methods=("POST",))
def invoice_issue(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    invoice = invoicing.get_invoice(ctx, pk)
    return _issue(request, ctx, invoice.pk)


@member_view(get=None, post=Perm.ISSUE_INVOICES, methods=("POST",))
def invoice_issue_many(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    """Issue the drafts ticked on the list, numbered in the list's order: all or none."""
    ids = request.POST.getlist("ids")
    back = redirect(f"{reverse('web:invoice_list')}?status={Status.DRAFT}")
    if not ids:
        messages.error(request, _("Tick the drafts to issue first."))
        return back
    try:
        issued = invoicing.issue_invoices(ctx, ids)
    except ConflictError as err:
        if err.code != "invoice.already_issued":
            raise
        messages.info(request, _("These drafts were already issued."))
        return redirect(f"{reverse('web:invoice_list')}?status={Status.ISSUED}")
    except BusinessError as err:  # NotFound included: a draft deleted meanwhile
        messages.error(request, message_of(err))
        return back
    messages.success(
        request,
        ngettext(
            "%(count)s invoice issued: %(first)s.",
            "%(count)s invoices issued: %(first)s to %(last)s.",
            len(issued),
        )
        % {"count": len(issued), "first": issued[0].number, "last": issued[-1].number},
    )
    return redirect(f"{reverse('web:invoice_list')}?status={Status.ISSUED}")


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def invoice_delete(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    invoice = invoicing.get_invoice(ctx, pk)
    try:
        invoicing.delete_draft(ctx, invoice.pk)
    except NotFound:
        raise
    except BusinessError as err:
        messages.error(request, message_of(err))
        return redirect("web:invoice_detail", pk=invoice.pk)
    messages.success(request, _("Draft deleted."))
    return redirect("web:invoice_list")


# --- issued documents ----------------------------------------------------------------------


@dataclass(frozen=True)
class ShownLine:
    description: str
    quantity: str
    unit: str
    unit_price: Amount
    discount: str
    vat: str
    net: Amount


def _shown_lines(invoice: Invoice) -> tuple[list[ShownLine], Preview]:
    """Issued: the frozen snapshot, exactly as on the PDF. Draft: the live computation."""
    currency = invoice.currency
    if invoice.snapshot:
        doc = from_dict(invoice.snapshot)
        lines = [
            ShownLine(
                line.description,
                plain(line.quantity),
                str(UNIT_LABELS.get(line.unit_code, line.unit_code)),
                Amount(line.unit_price, currency),
                percent(line.discount_percent) if line.discount_percent else "",
                f"{line.vat_category.value} {percent(line.vat_rate)}",
                Amount(line.amounts.net_amount, currency),
            )
            for line in doc.lines
        ]
        return lines, Preview(doc.totals, currency, [], [])
    stored = list(invoice.lines.all())
    try:
        totals: Totals | None = invoicing.draft_totals(invoice, stored)
    except BusinessError:
        totals = None
    lines = [
        ShownLine(
            line.description,
            plain(line.quantity),
            str(UNIT_LABELS.get(line.unit_code, line.unit_code)),
            Amount(line.unit_price, currency),
            percent(line.discount_percent) if line.discount_percent else "",
            f"{line.vat_category} {percent(line.vat_rate)}",
            Amount(totals.lines[i].net_amount if totals else None, currency),
        )
        for i, line in enumerate(stored)
    ]
    return lines, Preview(totals, currency, [], [])


def _send_initial(invoice: Invoice) -> dict[str, str]:
    customer = invoice.customer
    cc = [a for a in (customer.cc_emails, customer.accounting_email) if a]
    return {"to": customer.email, "cc": ", ".join(cc), "request_key": uuid.uuid4().hex}


def document_page(
    request: HttpRequest,
    ctx: Ctx,
    invoice: Invoice,
    *,
    send_form: SendForm | None = None,
    credit_form: CreditNoteForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    lines, shown = _shown_lines(invoice)
    has_pdf = (
        not invoice.is_draft
        and StoredDocument.objects.filter(
            organization_id=ctx.organization.id, owner_id=invoice.id, content_type=documents.PDF
        ).exists()
    )
    creditable = (
        not invoice.is_draft
        and invoice.kind != DocumentKind.CREDIT_NOTE
        and invoice.status != Status.CREDITED
    )
    return page(
        request,
        ctx,
        "web/invoices/document.html",
        {
            "invoice": invoice,
            "lines": lines,
            "preview": shown,
            "has_pdf": has_pdf,
            "credit_notes": list(invoice.credit_notes.exclude(status=Status.DRAFT)),
            "send_form": send_form or SendForm(initial=_send_initial(invoice)),
            "credit_form": credit_form or CreditNoteForm(),
            "credit_lines": [
                (line, plain(line.quantity))
                for line in invoice.lines.filter(deducted_invoice__isnull=True)
            ],
            "creditable": creditable,
            "error": error,
        },
        status=status,
    )


@xframe_options_sameorigin
@member_view(methods=("GET",))
def invoice_pdf(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    invoice = invoicing.get_invoice(ctx, pk)
    if invoice.is_draft:
        raise Http404(_("A draft has no PDF yet."))
    try:
        stored = documents.fetch(ctx.organization.id, invoice.id, documents.PDF)
    except StoredDocument.DoesNotExist:
        raise Http404(_("No PDF was stored for this invoice.")) from None
    response = HttpResponse(bytes(stored.content), content_type="application/pdf")
    inline = request.GET.get("inline") == "1"
    filename = stored.filename.replace("/", "-")
    response["Content-Disposition"] = content_disposition_header(not inline, filename) or ""
    response["Cache-Control"] = "private, no-store"
    return response


@member_view(get=None, post=Perm.SEND_INVOICES, methods=("POST",))
def invoice_send(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    invoice = invoicing.get_invoice(ctx, pk)
    form = SendForm(request.POST)
    if form.is_valid():
        from facturo.invoicing.sending import send_invoice  # written alongside the web UI

        try:
            send_invoice(
                ctx,
                invoice.pk,
                to=form.cleaned_data["to"],
                cc=form.cleaned_data["cc"],
                request_key=form.cleaned_data["request_key"] or None,
            )
        except NotFound:
            raise
        except BusinessError as err:
            attach_error(form, err)
        else:
            messages.success(
                request,
                _("The invoice is on its way to %(to)s.")
                % {"to": ", ".join(form.cleaned_data["to"])},
            )
            return redirect("web:invoice_detail", pk=invoice.pk)
    return document_page(request, ctx, invoice, send_form=form)


@member_view(get=None, post=Perm.SEND_INVOICES, methods=("POST",))
def invoice_revoke_links(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    """Every portal link to this invoice sent until now (in reminders) stops working, e.g.
    one that went to the wrong address; links sent afterwards work."""
    from facturo.portal.links import revoke_links

    invoice = invoicing.get_invoice(ctx, pk)
    if invoice.is_draft:
        raise Http404
    revoke_links(ctx, invoice.pk)
    messages.success(
        request,
        _("The portal links to invoice %(number)s sent until now no longer open it.")
        % {"number": invoice.number},
    )
    return redirect("web:invoice_detail", pk=invoice.pk)


@member_view(get=None, post=Perm.ISSUE_INVOICES, methods=("POST",))
def invoice_credit(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    invoice = invoicing.get_invoice(ctx, pk)
    form = CreditNoteForm(request.POST)
    if form.is_valid():
        lines: list[dict[str, Any]] | None = None
        if form.cleaned_data["mode"] == "partial":
            lines = []
            for line in invoice.lines.filter(deducted_invoice__isnull=True):
                if request.POST.get(f"credit-{line.pk}") != "on":
                    continue
                data: dict[str, Any] = {f: getattr(line, f) for f in invoicing.LINE_FIELDS}
                data["quantity"] = request.POST.get(f"credit-{line.pk}-quantity") or line.quantity
                lines.append(data)
            if not lines:
                form.add_error(None, _("Choose at least one line to credit."))
        if form.is_valid():
            try:
                note = invoicing.create_credit_note(
                    ctx, invoice.pk, lines=lines, reason=form.cleaned_data["reason"], issue=True
                )
            except NotFound:
                raise
            except BusinessError as err:
                attach_error(form, err)
            else:
                messages.success(
                    request, _("Credit note %(number)s issued.") % {"number": note.number}
                )
                return redirect("web:invoice_detail", pk=note.pk)
    return document_page(request, ctx, invoice, credit_form=form)
