from django.apps import AppConfig


class AccountingConfig(AppConfig):
    name = "facturo.accounting"
    label = "accounting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import handlers

        handlers.subscribe_all()
