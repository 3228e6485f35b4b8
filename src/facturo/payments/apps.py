from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "facturo.payments"
    label = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from facturo.foundation import events
        from facturo.invoicing.events import InvoiceIssued
        from facturo.subscriptions.events import SubscriptionInvoiceIssued

        from . import autopay, online, services
        from .events import AllocationChanged

        events.subscribe(InvoiceIssued, services.on_invoice_issued)
        events.subscribe(InvoiceIssued, online.on_credit_note)
        events.subscribe(AllocationChanged, online.on_allocation_changed)
        events.subscribe(SubscriptionInvoiceIssued, autopay.on_subscription_invoice_issued)
