from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "facturo.payments"
    label = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from facturo.foundation import events
        from facturo.invoicing.events import InvoiceIssued

        from . import services

        events.subscribe(InvoiceIssued, services.on_invoice_issued)
