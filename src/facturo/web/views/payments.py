"""Payments pages: list and detail (allocation screen: allocate, unallocate with a reason,
refund the customer's credit), record a payment, SEPA mandates (list, detail, revoke), SEPA
batches (create, download, settle, returns by file or by hand), payment settings (Stripe
keys with a "test connection" button, notifications, pre-notification, pain.008 version).

Reads through ``payments.selectors``, writes through ``payments.services`` / ``sepa`` /
``online`` / ``notify``; nothing is computed here.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from facturo.core.errors import BusinessError
from facturo.organizations.context import Ctx, Perm
from facturo.payments import notify, online, selectors, sepa
from facturo.payments import services as payments
from facturo.payments.models import Method, PaymentStatus

from ..forms import (
    AllocateForm,
    BatchForm,
    CreditorForm,
    MandateCreateForm,
    ManualReturnForm,
    PaymentForm,
    PaymentSettingsForm,
    RefundForm,
    ReturnsUploadForm,
    RevokeForm,
    StripeForm,
    UnallocateForm,
)
from .base import Amount, attach_error, member_view, message_of, page, paginate


def _fail(request: HttpRequest, err: BusinessError) -> None:
    messages.error(request, message_of(err))


# --- payments --------------------------------------------------------------------------------


@member_view(methods=("GET",))
def payment_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    qs = selectors.payments_with_details(ctx)
    status = request.GET.get("status", "")
    if status in PaymentStatus.values:
        qs = qs.filter(status=status)
    page_obj = paginate(request, qs)
    rows = []
    for p in page_obj:
        allocations = list(p.allocations.all())
        left = selectors.left_of(p, allocations, list(p.refunds.all()))
        numbers = sorted({a.invoice.number or "" for a in allocations if a.reversed_at is None})
        rows.append((p, Amount(p.amount, p.currency), Amount(left, p.currency), numbers))
    return page(request, ctx, "web/payments/list.html",
                {"page_obj": page_obj, "rows": rows, "status": status,
                 "statuses": PaymentStatus.choices})  # fmt: skip


@member_view(post=Perm.EDIT_INVOICES)
def payment_create(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    ctx.require(Perm.EDIT_INVOICES)
    initial = {"received_on": ctx.today(), "currency": ctx.organization.currency}
    if request.GET.get("customer"):
        initial["customer"] = request.GET["customer"]
    form = PaymentForm(request.POST or None, ctx=ctx, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            payment = payments.record_payment(
                ctx,
                customer_id=data["customer"].pk,
                amount=data["amount"],
                currency=data["currency"].upper(),
                method=data["method"],
                received_on=data["received_on"],
                payer=data["payer"],
                reference=data["reference"],
                fees=data["fees"] or "0",
                auto_allocate=data["auto_allocate"],
            )
        except BusinessError as err:
            attach_error(form, err, {"customer_id": "customer"})
        else:
            messages.success(request, _("Payment recorded."))
            return redirect("web:payment_detail", pk=payment.pk)
    return page(request, ctx, "web/payments/form.html", {"form": form})


@member_view(post=Perm.EDIT_INVOICES)
def payment_detail(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    payment = payments.get_payment(ctx, pk)
    payment = selectors.payments_with_details(ctx).get(pk=payment.pk)
    allocations = sorted(payment.allocations.all(), key=lambda a: (a.created_at, a.pk))
    refunds = list(payment.refunds.all())
    left = selectors.left_of(payment, allocations, refunds)
    open_rows = selectors.open_invoices(ctx, payment.customer_id)
    choices = [(str(i.pk), f"{i.number} — {Amount(due, i.currency)}")
               for i, due in open_rows if i.currency == payment.currency]  # fmt: skip
    allocate_form = AllocateForm(invoices=choices, prefix="alloc")
    refund_form = RefundForm(prefix="refund", initial={"refunded_on": ctx.today()})
    credit = payments.customer_credit(payment.customer, payment.currency)
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "allocate":
                allocate_form = AllocateForm(request.POST, invoices=choices, prefix="alloc")
                if allocate_form.is_valid():
                    d = allocate_form.cleaned_data
                    payments.allocate(ctx, payment.pk, [(d["invoice"], d["amount"])])
                    messages.success(request, _("Allocated."))
                    return redirect("web:payment_detail", pk=payment.pk)
            elif action == "allocate_auto":
                payments.allocate(ctx, payment.pk)
                messages.success(request, _("Allocated to the oldest open invoices."))
                return redirect("web:payment_detail", pk=payment.pk)
            elif action == "unallocate":
                form = UnallocateForm(request.POST)
                if not form.is_valid():
                    messages.error(request, _("Give the reason for taking this allocation back."))
                else:
                    ids = {a.pk for a in allocations}
                    if form.cleaned_data["allocation"] not in ids:
                        messages.error(request, _("No such allocation."))
                    else:
                        payments.unallocate(ctx, form.cleaned_data["allocation"],
                                            reason=form.cleaned_data["reason"])  # fmt: skip
                        messages.success(request, _("Allocation taken back."))
                return redirect("web:payment_detail", pk=payment.pk)
            elif action == "refund":
                refund_form = RefundForm(request.POST, prefix="refund")
                if refund_form.is_valid():
                    d = refund_form.cleaned_data
                    payments.refund(ctx, customer_id=payment.customer_id, amount=d["amount"],
                                    refunded_on=d["refunded_on"], method=d["method"],
                                    reference=d["reference"])  # fmt: skip
                    messages.success(request, _("Refund recorded."))
                    return redirect("web:payment_detail", pk=payment.pk)
            elif action == "return" and payment.method != Method.SEPA_DEBIT:
                reason = request.POST.get("reason", "")
                payments.return_payment(ctx, payment.pk, reason=reason)
                messages.success(request, _("Payment marked as returned."))
                return redirect("web:payment_detail", pk=payment.pk)
        except BusinessError as err:
            target = allocate_form if action == "allocate" else refund_form
            if action in ("allocate", "refund"):
                attach_error(target, err, {"invoice_id": "invoice"})
            else:
                _fail(request, err)
                return redirect("web:payment_detail", pk=payment.pk)
    return page(request, ctx, "web/payments/detail.html", {
        "payment": payment,
        "amount": Amount(payment.amount, payment.currency),
        "fees": Amount(payment.fees, payment.currency),
        "left": Amount(left, payment.currency),
        "has_left": left > 0,
        "credit": Amount(credit, payment.currency),
        "has_credit": credit > 0,
        "allocations": [(a, Amount(a.amount, payment.currency)) for a in allocations],
        "refunds": [(r, Amount(r.amount, payment.currency)) for r in refunds],
        "allocate_form": allocate_form,
        "refund_form": refund_form,
        "can_allocate": bool(choices) and left > 0 and payment.status != "returned",
    })  # fmt: skip


# --- mandates --------------------------------------------------------------------------------


@member_view(post=Perm.EDIT_INVOICES)
def mandate_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    form = MandateCreateForm(request.POST or None, ctx=ctx, initial={"signed_on": ctx.today()})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            mandate = sepa.create_mandate(ctx, customer_id=d["customer"].pk, iban=d["iban"],
                                          bic=d["bic"], debtor_name=d["debtor_name"],
                                          signed_on=d["signed_on"], kind=d["kind"],
                                          reference=d["reference"])  # fmt: skip
        except BusinessError as err:
            attach_error(form, err, {"customer_id": "customer"})
        else:
            messages.success(request, _("Mandate recorded."))
            return redirect("web:mandate_detail", pk=mandate.pk)
    page_obj = paginate(request, selectors.mandates(ctx))
    creditor = selectors.sepa_creditor(ctx.organization.id)
    return page(request, ctx, "web/payments/mandates.html",
                {"page_obj": page_obj, "form": form,
                 "has_creditor": creditor is not None})  # fmt: skip


@member_view(post=Perm.EDIT_INVOICES)
def mandate_detail(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    mandate = sepa.get_mandate(ctx, pk)
    form = RevokeForm(request.POST or None, initial={"revoked_on": ctx.today()})
    if request.method == "POST" and form.is_valid():
        sepa.revoke_mandate(ctx, mandate.pk, revoked_on=form.cleaned_data["revoked_on"],
                            reason=form.cleaned_data["reason"])  # fmt: skip
        messages.success(request, _("Mandate revoked: it will never be collected again."))
        return redirect("web:mandate_detail", pk=mandate.pk)
    debits = mandate.debits.select_related("batch", "payment").order_by("-id")[:50]
    return page(request, ctx, "web/payments/mandate.html", {
        "mandate": mandate, "form": form,
        "debits": [(d, Amount(d.amount, "EUR")) for d in debits],
    })  # fmt: skip


# --- SEPA batches ----------------------------------------------------------------------------


@member_view(post=Perm.EDIT_INVOICES)
def batch_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    config = notify.settings_of(ctx.organization)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    form = BatchForm(request.POST if action == "batch" else None, prefix="batch",
                     initial={"collection_date": ctx.today(),
                              "version": config.pain_version})  # fmt: skip
    upload = ReturnsUploadForm(prefix="returns")
    report: list[Any] = []
    skipped: list[Any] = []
    if action == "returns":
        upload = ReturnsUploadForm(request.POST, request.FILES, prefix="returns")
        if upload.is_valid():
            f = upload.cleaned_data["file"]
            try:
                report = sepa.import_returns(ctx, f.read(), filename=f.name)
            except BusinessError as err:
                attach_error(upload, err)
            else:
                done = sum(1 for r in report if r.outcome == "returned")
                messages.success(request, _("%(n)s debit(s) returned.") % {"n": done})
    elif action == "batch" and form.is_valid():
        try:
            result = sepa.create_batch(ctx, collection_date=form.cleaned_data["collection_date"],
                                       version=form.cleaned_data["version"])  # fmt: skip
        except BusinessError as err:
            attach_error(form, err)
        else:
            skipped = result.skipped
            if result.batch is not None:
                messages.success(request, _("Batch created."))
                notice = (result.batch.collection_date - ctx.today()).days
                if notice < config.prenotification_days:
                    messages.warning(
                        request,
                        _(
                            "The debtors are notified %(days)s day(s) before the collection, fewer "
                            "than the %(wanted)s days of your settings: their e-mails go out now."
                        )
                        % {"days": max(notice, 0), "wanted": config.prenotification_days},
                    )
                if not skipped:
                    return redirect("web:batch_detail", pk=result.batch.pk)
            else:
                messages.warning(request, _("Nothing to collect on that date."))
    page_obj = paginate(request, selectors.batches(ctx))
    rows = [(b, Amount(b.total, b.currency)) for b in page_obj]
    return page(request, ctx, "web/payments/batches.html", {
        "page_obj": page_obj, "rows": rows, "form": form, "upload": upload,
        "report": report, "skipped": skipped,
        "has_creditor": selectors.sepa_creditor(ctx.organization.id) is not None,
        "queued": selectors.auto_pay_requests(ctx).filter(method="sepa", state="queued").count(),
    })  # fmt: skip


@member_view(post=Perm.EDIT_INVOICES)
def batch_detail(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    batch = sepa.get_batch(ctx, pk)
    reasons = [(code, f"{code} — {sepa.reason_text(code)}") for code in sepa.RETURN_REASONS]
    if request.method == "POST":
        try:
            if request.POST.get("action") == "settle":
                n = sepa.settle_batch(ctx, batch.pk)
                messages.success(request, _("%(n)s debit(s) received.") % {"n": n})
            else:
                form = ManualReturnForm(request.POST, reasons=reasons)
                mine = {i.payment_id for i in selectors.batch_items(batch)}
                if form.is_valid() and form.cleaned_data["payment"] in mine:
                    d = form.cleaned_data
                    sepa.record_return(ctx, d["payment"], reason_code=d["reason_code"],
                                       returned_on=d["returned_on"])  # fmt: skip
                    messages.success(request, _("Debit returned: its invoices are open again."))
                else:
                    messages.error(request, _("Choose a reason and a date."))
        except BusinessError as err:
            _fail(request, err)
        return redirect("web:batch_detail", pk=batch.pk)
    items = [(i, Amount(i.amount, "EUR"),
              ManualReturnForm(reasons=reasons, initial={"payment": i.payment_id,
                                                         "returned_on": ctx.today()},
                               auto_id=f"id_r{i.pk}_%s"))
             for i in selectors.batch_items(batch)]  # fmt: skip
    return page(request, ctx, "web/payments/batch.html",
                {"batch": batch, "total": Amount(batch.total, batch.currency),
                 "items": items})  # fmt: skip


@member_view(methods=("GET",))
def batch_file(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    batch = sepa.get_batch(ctx, pk)
    response = HttpResponse(bytes(batch.content), content_type="application/xml")
    response["Content-Disposition"] = content_disposition_header(True, batch.filename) or ""
    return response


# --- settings --------------------------------------------------------------------------------


@member_view(get=Perm.MANAGE_ORGANIZATION, post=Perm.MANAGE_ORGANIZATION)
def payment_settings(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    stripe_row = selectors.provider_settings(ctx)
    config = notify.settings_of(ctx.organization)
    creditor = selectors.sepa_creditor(ctx.organization.id)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    enabled = stripe_row.enabled if stripe_row else True
    stripe_form = StripeForm(request.POST if action == "stripe" else None, prefix="stripe",
                             initial={"enabled": enabled})  # fmt: skip
    settings_form = PaymentSettingsForm(
        request.POST if action == "settings" else None, prefix="pay",
        initial={k: getattr(config, k) for k in (
            "notify_on_payment", "notify_address", "prenotification_days", "pain_version")},
    )  # fmt: skip
    creditor_form = CreditorForm(
        request.POST if action == "creditor" else None, prefix="sepa",
        initial={"identifier": creditor.identifier, "iban": creditor.iban,
                 "bic": creditor.bic} if creditor else None,
    )  # fmt: skip
    try:
        if action == "stripe" and stripe_form.is_valid():
            d = stripe_form.cleaned_data
            secret = d["secret_key"] or (stripe_row.secret_key if stripe_row else "")
            hook = d["webhook_secret"] or (stripe_row.webhook_secret if stripe_row else "")
            if not secret or not hook:
                stripe_form.add_error(None, _("Give the secret key and the webhook secret."))
            else:
                online.configure(ctx, "stripe", secret_key=secret, webhook_secret=hook,
                                 enabled=d["enabled"])  # fmt: skip
                messages.success(request, _("Stripe settings saved."))
                return redirect("web:payment_settings")
        elif action == "test" and stripe_row is not None:
            try:
                online.test_connection(ctx, "stripe")
            except BusinessError:
                raise
            except Exception as exc:  # the provider's own error, shown as is
                messages.error(request, _("Stripe refused the connection: %(e)s") % {"e": exc})
            else:
                messages.success(request, _("Connection to Stripe works."))
            return redirect("web:payment_settings")
        elif action == "settings" and settings_form.is_valid():
            notify.save_settings(ctx, **settings_form.cleaned_data)
            messages.success(request, _("Payment settings saved."))
            return redirect("web:payment_settings")
        elif action == "creditor" and creditor_form.is_valid():
            sepa.configure_creditor(ctx, **creditor_form.cleaned_data)
            messages.success(request, _("SEPA creditor saved."))
            return redirect("web:payment_settings")
    except BusinessError as err:
        target = {"settings": settings_form, "creditor": creditor_form}.get(action, stripe_form)
        attach_error(target, err)
    webhook_url = (request.build_absolute_uri(f"/webhooks/stripe/{stripe_row.webhook_token}/")
                   if stripe_row else "")  # fmt: skip
    return page(request, ctx, "web/payments/settings.html", {
        "stripe": stripe_row, "stripe_form": stripe_form, "settings_form": settings_form,
        "creditor_form": creditor_form, "webhook_url": webhook_url,
    })  # fmt: skip
