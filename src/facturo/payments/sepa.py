"""SEPA Core direct debit without a third party: the organization's creditor identifier,
customers' mandates, pain.008 batches of due invoices, and returns.

Collecting a batch writes one pending ``sepa_debit`` payment per mandate, allocated to the
invoices it pays on the collection date (so they are not collected twice); a return or
rejection (AC04, MD06, …) goes through :func:`services.return_payment`, which reopens them.
A revoked mandate is never collected.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils import timezone

from facturo.audit import services as audit
from facturo.core.errors import BusinessError, NotFound, _
from facturo.core.money import ZERO
from facturo.core.text import clean_text
from facturo.customers.models import Customer
from facturo.formats.sepa import creditor_id, pain008
from facturo.formats.sepa import returns as returns_format
from facturo.formats.sepa.reference import creditor_reference
from facturo.foundation.db import atomic
from facturo.invoicing.models import Invoice
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.identifiers import clean_bic, clean_iban

from . import notify, services
from .models import (
    AutoPayRequest,
    AutoPayState,
    DebitBatch,
    DebitItem,
    Mandate,
    MandateKind,
    MandateSource,
    Method,
    Payment,
    PaymentStatus,
    SepaCreditor,
)

# ISO 20022 reason codes a bank gives for an R-transaction (the common ones).
RETURN_REASONS = {
    "AC01": _("Incorrect account number"),
    "AC04": _("Account closed"),
    "AC06": _("Account blocked"),
    "AG01": _("Transaction forbidden on this account"),
    "AG02": _("Invalid bank operation code"),
    "AM04": _("Insufficient funds"),
    "AM05": _("Duplicate collection"),
    "BE05": _("Unrecognised creditor"),
    "CNOR": _("Creditor bank is not registered"),
    "DNOR": _("Debtor bank is not registered"),
    "FF01": _("Invalid file format"),
    "MD01": _("No valid mandate"),
    "MD02": _("Missing or wrong mandate data"),
    "MD06": _("Refund requested by the debtor"),
    "MD07": _("Debtor deceased"),
    "MS02": _("Refused by the debtor"),
    "MS03": _("Reason not specified"),
    "RC01": _("Incorrect BIC"),
    "RR01": _("Missing debtor account or identification"),
    "RR02": _("Missing debtor name or address"),
    "RR03": _("Missing creditor name or address"),
    "RR04": _("Regulatory reason"),
    "SL01": _("Specific service offered by the debtor bank"),
}
_UMR = re.compile(r"^[A-Za-z0-9+?/:().,' -]{1,35}$")


# --- creditor --------------------------------------------------------------------------------


def configure_creditor(
    ctx: Ctx, *, identifier: str, name: str = "", iban: str = "", bic: str = ""
) -> SepaCreditor:
    """The organization's creditor identifier (ICS) and the account debits are paid into
    (its own IBAN/BIC by default)."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    org = ctx.organization
    try:
        ics = creditor_id.normalize(identifier)
    except creditor_id.BadCreditorIdentifier as exc:
        raise BusinessError(
            "sepa.invalid_creditor_identifier",
            _("“%(value)s” is not a valid SEPA creditor identifier (ICS): %(why)s."),
            field="identifier",
            value=identifier,
            why=str(exc),
        ) from None
    account = clean_iban(iban or org.iban)
    if not account:
        raise BusinessError(
            "sepa.creditor_iban_required",
            _("An IBAN is needed to receive direct debits."),
            field="iban",
        )
    with atomic():
        row, _created = SepaCreditor.objects.update_or_create(
            organization=org,
            defaults={
                "identifier": ics,
                "name": clean_text(name or org.legal_name or org.name, "name", max_length=70),
                "iban": account,
                "bic": clean_bic(bic or org.bic),
            },
        )
        audit.record(
            org.id,
            ctx.actor,
            "sepa.creditor_configured",
            row,
            after={"identifier": ics, "iban": account},
        )
    return row


# --- mandates --------------------------------------------------------------------------------


def create_mandate(
    ctx: Ctx,
    *,
    customer_id: Any,
    iban: str,
    bic: str = "",
    debtor_name: str,
    signed_on: dt.date,
    kind: str = MandateKind.RECURRENT,
    source: str = MandateSource.PAPER,
    reference: str = "",
    signed_ip: str | None = None,
) -> Mandate:
    """Record a mandate signed on paper or in the portal. IBAN required; IBAN and BIC are
    checked (schwifty); the unique mandate reference (UMR) is generated when not given."""
    ctx.require(Perm.EDIT_INVOICES)
    return _create_mandate(ctx, customer_id=customer_id, iban=iban, bic=bic,
                           debtor_name=debtor_name, signed_on=signed_on, kind=kind,
                           source=source, reference=reference, signed_ip=signed_ip)  # fmt: skip


# The customer portal acts with this role: it has no permission of its own; the signed link
# is its only capability and the portal services below are scoped to the link's invoice.
PORTAL_ROLE = "portal"


def sign_mandate_in_portal(
    invoice: Invoice,
    *,
    iban: str,
    bic: str,
    debtor_name: str,
    signed_on: dt.date,
    signed_ip: str | None,
) -> Mandate:
    """The customer of ``invoice`` signs a recurrent mandate from their portal link."""
    from facturo.audit.services import Actor

    actor = Actor(
        id=f"portal:{invoice.pk}", label=f"portal: {invoice.customer.name}"[:255], ip=signed_ip
    )
    ctx = Ctx(invoice.organization, PORTAL_ROLE, actor)
    return _create_mandate(ctx, customer_id=invoice.customer_id, iban=iban, bic=bic,
                           debtor_name=debtor_name, signed_on=signed_on,
                           kind=MandateKind.RECURRENT, source=MandateSource.PORTAL,
                           reference="", signed_ip=signed_ip)  # fmt: skip


def _create_mandate(
    ctx: Ctx,
    *,
    customer_id: Any,
    iban: str,
    bic: str,
    debtor_name: str,
    signed_on: dt.date,
    kind: str,
    source: str,
    reference: str,
    signed_ip: str | None,
) -> Mandate:
    if not (iban or "").strip():
        raise BusinessError(
            "mandate.iban_required", _("The IBAN of the account to debit is required."), "iban"
        )
    account, agent = clean_iban(iban), clean_bic(bic)
    name = clean_text(debtor_name, "debtor_name", max_length=70)
    if not name:
        raise BusinessError(
            "mandate.name_required", _("The account holder's name is required."), "debtor_name"
        )
    if kind not in MandateKind.values or source not in MandateSource.values:
        raise BusinessError("mandate.bad_kind", _("Unknown kind of mandate."), "kind")
    umr = clean_text(reference, "reference", max_length=35)
    if umr and not _UMR.match(umr):
        raise BusinessError(
            "mandate.bad_reference",
            _("A mandate reference has at most 35 letters, digits and + ? / - : ( ) . , '"),
            "reference",
        )
    with atomic():
        customer = Customer.objects.filter(organization=ctx.organization, pk=customer_id).first()
        if customer is None:
            raise NotFound("customer.not_found", _("No such customer."))
        pk = uuid.uuid4()
        umr = umr or f"FCT-{pk.hex[:24].upper()}"
        if Mandate.objects.filter(organization=ctx.organization, reference=umr).exists():
            raise BusinessError(
                "mandate.duplicate_reference",
                _("A mandate with the reference %(reference)s already exists."),
                "reference",
                reference=umr,
            )
        mandate = Mandate.objects.create(
            id=pk,
            organization=ctx.organization,
            customer=customer,
            reference=umr,
            kind=kind,
            source=source,
            debtor_name=name,
            iban=account,
            bic=agent,
            signed_on=signed_on,
            signed_ip=signed_ip,
            created_by=ctx.actor.label,
        )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "sepa.mandate_created",
            mandate,
            after={"reference": umr, "iban": account, "kind": kind, "source": source},
        )
    return mandate


def get_mandate(ctx: Ctx, mandate_id: Any) -> Mandate:
    ctx.require(Perm.VIEW)
    try:
        return Mandate.objects.get(organization=ctx.organization, pk=mandate_id)
    except (Mandate.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound("mandate.not_found", _("No such mandate.")) from None


def revoke_mandate(ctx: Ctx, mandate_id: Any, *, revoked_on: dt.date, reason: str = "") -> Mandate:
    """Revoked for good: it will never be collected again."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        mandate = get_mandate(ctx, mandate_id)
        if mandate.revoked_on is None:
            mandate.revoked_on = revoked_on
            mandate.revocation_reason = clean_text(reason, "reason", max_length=300)
            mandate.save(update_fields=["revoked_on", "revocation_reason"])
            audit.record(
                ctx.organization.id,
                ctx.actor,
                "sepa.mandate_revoked",
                mandate,
                after={"revoked_on": revoked_on.isoformat(), "reason": reason},
            )
    return mandate


def collected_before(mandate: Mandate) -> bool:
    """A collection that was not returned: the next one is RCUR."""
    return (
        DebitItem.objects.filter(mandate=mandate)
        .exclude(payment__status=PaymentStatus.RETURNED)
        .exists()
    )


def next_sequence_type(mandate: Mandate) -> str:
    return pain008.sequence_type(
        recurrent=mandate.kind == MandateKind.RECURRENT, collected_before=collected_before(mandate)
    )


def usable_mandate(customer: Customer, on: dt.date) -> Mandate | None:
    return (
        Mandate.objects.filter(customer=customer, revoked_on__isnull=True, signed_on__lte=on)
        .order_by("-signed_on", "-created_at")
        .first()
    )


# --- batches ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    invoice_number: str
    customer: str
    code: str
    reason: str


@dataclass
class BatchResult:
    batch: DebitBatch | None
    skipped: list[Skipped] = field(default_factory=list)


def _why_not(customer: Customer, revoked: Mandate | None) -> tuple[str, str]:
    if revoked is not None:
        return "sepa.mandate_revoked", str(
            _("Mandate %(reference)s was revoked on %(date)s: it cannot be collected.")
            % {"reference": revoked.reference, "date": revoked.revoked_on}
        )
    return "sepa.no_mandate", str(_("The customer has no valid SEPA mandate."))


def _end_to_end_id(numbers: list[str], item_id: uuid.UUID) -> str:
    """The EndToEndId written in the file and stored: the invoice number (SEPA characters
    only) and a suffix unique to this debit, so a re-collection never reuses one."""
    first = numbers[0] if len(numbers) == 1 else f"{numbers[0]}+{len(numbers) - 1}"
    return f"{pain008.sepa_id(first, 26)}-{item_id.hex[:8].upper()}"


def create_batch(
    ctx: Ctx,
    *,
    collection_date: dt.date,
    invoice_ids: list[Any] | None = None,
    version: str | None = None,
) -> BatchResult:
    """Collect, on ``collection_date``, the invoices due by then of customers with a valid
    mandate, plus the auto-pay invoices queued for SEPA (or only the given invoices): one
    debit per mandate, a pending payment allocated to those invoices, the pain.008 file
    (``version``, default the organization's setting) stored, and each debtor's
    pre-notification queued. Invoices that cannot be collected are listed in ``skipped``
    with the reason; nothing is written when none can."""
    ctx.require(Perm.EDIT_INVOICES)
    org = ctx.organization
    creditor = SepaCreditor.objects.filter(organization=org).first()
    if creditor is None:
        raise BusinessError(
            "sepa.no_creditor",
            _("Set the SEPA creditor identifier (ICS) before collecting direct debits."),
        )
    config = notify.settings_of(org)
    version = version or config.pain_version
    if version not in pain008.VERSIONS:
        raise BusinessError(
            "sepa.bad_version",
            _("Unknown SEPA file version “%(value)s” (pain.008.001.02 or pain.008.001.08)."),
            "version",
            value=version,
        )
    with atomic():
        candidates = Invoice.objects.filter(
            organization=org, kind__in=services.PAYABLE_KINDS, status__in=services.OPEN_STATUSES
        )
        queued = AutoPayRequest.objects.filter(
            organization=org, method="sepa", state=AutoPayState.QUEUED
        ).values("invoice_id")
        if invoice_ids is not None:
            candidates = candidates.filter(pk__in=invoice_ids)
        else:
            with_mandate = Mandate.objects.filter(organization=org).values("customer_id")
            candidates = candidates.filter(
                Q(due_date__lte=collection_date) | Q(pk__in=queued),
                customer_id__in=with_mandate,
            )
        # Invoices locked by id before any payment (the lock order of services.allocate).
        locked = services._lock_invoices(candidates.values_list("pk", flat=True))
        invoices = (
            Invoice.objects.filter(pk__in=list(locked))
            .select_related("customer")
            .order_by("due_date", "number")
        )
        by_customer: dict[Any, list[Invoice]] = defaultdict(list)
        for invoice in invoices:
            by_customer[invoice.customer_id].append(invoice)
        everything = [inv for group in by_customer.values() for inv in group]
        due_of = services.amounts_due(everything)
        # One query for the mandates of all these customers, one for their collections.
        usable: dict[Any, Mandate] = {}
        revoked: dict[Any, Mandate] = {}
        for m in Mandate.objects.filter(organization=org, customer_id__in=list(by_customer)):
            if m.revoked_on is not None:
                revoked.setdefault(m.customer_id, m)
            elif m.signed_on <= collection_date:
                best = usable.get(m.customer_id)
                if best is None or (m.signed_on, m.created_at) > (best.signed_on, best.created_at):
                    usable[m.customer_id] = m
        collected = set(
            DebitItem.objects.filter(mandate__in=list(usable.values()))
            .exclude(payment__status=PaymentStatus.RETURNED)
            .values_list("mandate_id", flat=True)
        )
        skipped: list[Skipped] = []
        plan: list[tuple[Mandate, list[tuple[Invoice, Decimal]]]] = []
        for customer_id, group in by_customer.items():
            customer = group[0].customer
            mandate = usable.get(customer_id)
            code, reason = "", ""
            if mandate is None:
                code, reason = _why_not(customer, revoked.get(customer_id))
            elif mandate.kind == MandateKind.ONE_OFF and mandate.pk in collected:
                code = "sepa.mandate_used"
                reason = str(
                    _("The one-off mandate %(reference)s was already collected.")
                    % {"reference": mandate.reference}
                )
            parts: list[tuple[Invoice, Decimal]] = []
            for invoice in group:
                due = due_of[invoice.pk]
                if invoice.currency != "EUR":
                    skipped.append(
                        Skipped(
                            invoice.number or "",
                            customer.name,
                            "sepa.not_euro",
                            str(_("SEPA debits are in euros.")),
                        )
                    )
                elif code:
                    skipped.append(Skipped(invoice.number or "", customer.name, code, reason))
                elif due > 0:
                    parts.append((invoice, due))
            if mandate is not None and not code and parts:
                plan.append((mandate, parts))
        if not plan:
            return BatchResult(None, skipped)
        batch_id = uuid.uuid4()
        message_id = f"FCT-{collection_date:%Y%m%d}-{batch_id.hex[:12].upper()}"
        debits: list[pain008.DirectDebit] = []
        items: list[DebitItem] = []
        for mandate, parts in plan:
            amount = sum((due for _inv, due in parts), ZERO)
            numbers = [inv.number or "" for inv, _due in parts]
            first = numbers[0]
            end_to_end = _end_to_end_id(numbers, uuid.uuid4())
            remittance = (
                f"{creditor_reference(first)} {first}" if len(numbers) == 1 else " ".join(numbers)
            )
            sequence = pain008.sequence_type(
                recurrent=mandate.kind == MandateKind.RECURRENT,
                collected_before=mandate.pk in collected,
            )
            payment = services.record_payment(
                ctx,
                customer_id=mandate.customer_id,
                amount=amount,
                currency="EUR",
                method=Method.SEPA_DEBIT,
                received_on=collection_date,
                payer=mandate.debtor_name,
                reference=f"{message_id} {end_to_end}",
                allocations=[(inv.pk, due) for inv, due in parts],
                status=PaymentStatus.PENDING,
            )
            debits.append(
                pain008.DirectDebit(
                    end_to_end_id=end_to_end,
                    amount=amount,
                    mandate_reference=mandate.reference,
                    mandate_signed_on=mandate.signed_on,
                    sequence_type=sequence,
                    debtor_name=mandate.debtor_name,
                    debtor_iban=mandate.iban,
                    debtor_bic=mandate.bic,
                    remittance=remittance,
                )
            )
            items.append(
                DebitItem(
                    organization=org,
                    mandate=mandate,
                    payment=payment,
                    end_to_end_id=end_to_end,
                    sequence_type=sequence,
                    amount=amount,
                )
            )
        content = pain008.write(
            message_id=message_id,
            created_at=timezone.now(),
            creditor=pain008.Creditor(
                creditor.name, creditor.iban, creditor.bic, creditor.identifier
            ),
            collection_date=collection_date,
            debits=debits,
            version=version,
        )
        errors = pain008.validate(content)
        if errors:  # our own writer's bug: never hand the bank a file it would reject
            raise BusinessError(
                "sepa.invalid_file",
                _("The generated file is invalid: %(e)s"),
                e="; ".join(errors[:3]),
            )
        batch = DebitBatch.objects.create(
            id=batch_id,
            organization=org,
            message_id=message_id,
            collection_date=collection_date,
            count=len(debits),
            total=pain008.control_sum(debits),
            filename=f"{message_id}.xml",
            version=version,
            content=content,
            created_by=ctx.actor.label,
        )
        for item in items:
            item.batch = batch
            item.save()
            notify.prenotify(item, creditor.identifier)
        collected_ids = [inv.pk for _m, parts in plan for inv, _due in parts]
        AutoPayRequest.objects.filter(
            invoice_id__in=collected_ids, state=AutoPayState.QUEUED
        ).update(state=AutoPayState.COLLECTED, note=message_id)
        audit.record(
            org.id,
            ctx.actor,
            "sepa.batch_created",
            batch,
            after={
                "message_id": message_id,
                "version": version,
                "count": batch.count,
                "total": batch.total,
                "skipped": [s.invoice_number for s in skipped],
            },
        )
    return BatchResult(batch, skipped)


def get_batch(ctx: Ctx, batch_id: Any) -> DebitBatch:
    ctx.require(Perm.VIEW)
    try:
        return DebitBatch.objects.get(organization=ctx.organization, pk=batch_id)
    except (DebitBatch.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound("sepa.batch_not_found", _("No such direct debit batch.")) from None


def settle_batch(ctx: Ctx, batch_id: Any) -> int:
    """The bank credited the batch: its pending payments become received (and the
    "payment received" notifications go out)."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        batch = get_batch(ctx, batch_id)
        pending = list(
            Payment.objects.select_for_update()
            .filter(debit__batch=batch, status=PaymentStatus.PENDING)
            .order_by("pk")
        )
        for payment in pending:
            payment.status = PaymentStatus.RECEIVED
            payment.save(update_fields=["status"])
            notify.payment_received(payment)
        if batch.settled_at is None:
            batch.settled_at = timezone.now()
            batch.save(update_fields=["settled_at"])
            audit.record(
                ctx.organization.id,
                ctx.actor,
                "sepa.batch_settled",
                batch,
                after={"settled": len(pending)},
            )
        return len(pending)


def reason_text(code: str) -> str:
    """The readable reason of an ISO reason code, in the active language."""
    from django.utils.translation import gettext

    known = RETURN_REASONS.get(code)
    return gettext(known) if known else gettext(_("Reason code %(code)s")) % {"code": code}


def _return(ctx: Ctx, payment: Payment, code: str, returned_on: dt.date, note: str = "") -> Payment:
    # Stored in English after the code; pages show reason_text(code) in the reader's language.
    from django.utils import translation

    with translation.override("en"):
        text = reason_text(code)
    reason = f"{code} {text} ({returned_on.isoformat()})"
    if note:
        reason = f"{reason}: {clean_text(note, 'note', max_length=200)}"
    return services.return_payment(ctx, payment.pk, reason=reason[:300])


def record_return(
    ctx: Ctx, payment_id: Any, *, reason_code: str, note: str = "", returned_on: dt.date
) -> Payment:
    """A debit came back (return, rejection, refund request) with an ISO reason code: the
    payment is returned and its invoices reopen, with the reason."""
    code = (reason_code or "").strip().upper()
    if code not in RETURN_REASONS:
        raise BusinessError(
            "sepa.bad_reason_code",
            _("Unknown SEPA reason code “%(value)s” (e.g. AC04, AM04, MD06)."),
            "reason_code",
            value=reason_code,
        )
    payment = services.get_payment(ctx, payment_id)
    if payment.method != Method.SEPA_DEBIT:
        raise BusinessError(
            "sepa.not_a_debit", _("Only a SEPA direct debit can be returned this way.")
        )
    return _return(ctx, payment, code, returned_on, note)


@dataclass(frozen=True)
class ImportedReturn:
    end_to_end_id: str
    reason_code: str
    reason: str
    outcome: str  # "returned", "already_returned", "unknown", "amount_mismatch"
    payment_id: Any = None
    invoices: tuple[str | None, ...] = ()
    position: str = ""


def import_returns(ctx: Ctx, data: bytes, *, filename: str = "") -> list[ImportedReturn]:
    """Read a pain.002 or camt.054 file and return every debit it rejects or reverses: the
    allocations are taken back, the invoices reopen, the reason (ISO code) is kept. Safe to
    import the same file twice (already returned debits are reported as such). A file that
    cannot be read changes nothing (``sepa.bad_returns_file``)."""
    ctx.require(Perm.EDIT_INVOICES)
    try:
        parsed = returns_format.parse_returns(data, filename)
    except returns_format.ReturnsFileError as exc:
        raise BusinessError(
            "sepa.bad_returns_file",
            _("The file %(name)s cannot be read (%(where)s): %(why)s"),
            "file",
            name=filename or "-",
            where=exc.where or "-",
            why=exc.message,
        ) from None
    report: list[ImportedReturn] = []
    org = ctx.organization
    today = ctx.today()
    with atomic():
        for entry in parsed.items:
            code = entry.reason_code.upper() or "MS03"
            if entry.end_to_end_id:
                found = list(
                    DebitItem.objects.filter(
                        organization=org, end_to_end_id=entry.end_to_end_id
                    ).select_related("payment")
                )
            else:  # the whole original file was rejected
                found = list(
                    DebitItem.objects.filter(organization=org, batch__message_id=entry.message_id)
                    .select_related("payment")
                    .order_by("id")
                )
            if not found:
                report.append(ImportedReturn(entry.end_to_end_id or entry.message_id, code,
                                             reason_text(code), "unknown",
                                             position=entry.position))  # fmt: skip
                continue
            for item in found:
                payment = item.payment
                numbers = tuple(
                    Invoice.objects.filter(allocations__payment=payment)
                    .order_by("number")
                    .values_list("number", flat=True)
                    .distinct()
                )
                outcome = "returned"
                if entry.amount is not None and entry.amount != item.amount:
                    outcome = "amount_mismatch"
                elif payment.status == PaymentStatus.RETURNED:
                    outcome = "already_returned"
                else:
                    _return(ctx, payment, code, entry.on or today,
                            f"{parsed.kind} {filename}".strip())  # fmt: skip
                report.append(ImportedReturn(item.end_to_end_id, code, reason_text(code),
                                             outcome, payment.pk, numbers,
                                             entry.position))  # fmt: skip
        audit.record(
            org.id,
            ctx.actor,
            "sepa.returns_imported",
            object_type="file",
            object_id=filename[:100],
            after={
                "kind": parsed.kind,
                "returned": sum(1 for r in report if r.outcome == "returned"),
                "unknown": sum(1 for r in report if r.outcome == "unknown"),
            },
        )
    return report
