from django.apps import AppConfig


class BankingConfig(AppConfig):
    name = "facturo.banking"
    label = "banking"
    default_auto_field = "django.db.models.BigAutoField"
