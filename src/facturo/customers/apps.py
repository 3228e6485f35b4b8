from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "facturo.customers"
    default_auto_field = "django.db.models.BigAutoField"
