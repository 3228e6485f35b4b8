from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "facturo.invoicing"
    default_auto_field = "django.db.models.BigAutoField"
