from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "facturo.subscriptions"
    default_auto_field = "django.db.models.BigAutoField"
