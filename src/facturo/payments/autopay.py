"""Auto-pay of subscription invoices: a billing run issued an invoice of a subscription
set to auto-pay (``none``/``sepa``/``card``).

- ``sepa``: with a valid mandate the invoice is queued for the next SEPA batch (collected
  whatever its due date); without one it is marked skipped with the reason.
- ``card``: when online payment is enabled, the invoice is queued and
  :func:`online.send_payment_links` (job, after the commit) e-mails the hosted payment page.
  An off-session charge of a saved card is not done (it needs a saved payment method,
  which facturo does not keep).

One :class:`AutoPayRequest` per invoice: a redelivered event changes nothing.
"""

from __future__ import annotations

from typing import Any

from facturo.foundation.db import on_commit
from facturo.invoicing.models import Invoice

from . import selectors
from .models import AutoPayRequest, AutoPayState

METHODS = ("sepa", "card")


def _auto_pay_of(event: Any) -> str:
    """From the event (the subscriptions app adds it), else from the subscription row."""
    value = getattr(event, "auto_pay", None)
    if value is None:
        from facturo.subscriptions.models import Subscription

        row = Subscription.objects.filter(pk=event.subscription_id).first()
        value = getattr(row, "auto_pay", None) if row is not None else None
    return str(value or "none")


def on_subscription_invoice_issued(event: Any) -> None:
    method = _auto_pay_of(event)
    if method not in METHODS:
        return
    invoice = Invoice.objects.select_related("customer").get(pk=event.invoice_id)
    state, note = AutoPayState.QUEUED, ""
    if method == "sepa":
        on = invoice.issue_date or invoice.due_date
        mandate = selectors.active_mandate(invoice, on) if on else None
        if selectors.sepa_creditor(invoice.organization_id) is None:
            state, note = AutoPayState.SKIPPED, "no SEPA creditor identifier (ICS)"
        elif mandate is None:
            state, note = AutoPayState.SKIPPED, "no valid SEPA mandate"
        else:
            note = mandate.reference
    elif not selectors.online_payment_enabled(invoice.organization_id):
        state, note = AutoPayState.SKIPPED, "online payment is not enabled"
    elif not invoice.customer.email:
        state, note = AutoPayState.SKIPPED, "the customer has no e-mail address"
    _row, created = AutoPayRequest.objects.get_or_create(
        invoice=invoice,
        defaults={
            "organization_id": invoice.organization_id,
            "method": method,
            "state": state,
            "note": note,
        },
    )
    if created and method == "card" and state == AutoPayState.QUEUED:
        organization_id = invoice.organization_id

        def send() -> None:
            from . import online

            try:
                online.send_payment_links(organization_id)
            except Exception:  # the periodic job sends it
                import logging

                logging.getLogger(__name__).warning("payment links not sent", exc_info=True)

        on_commit(send)
