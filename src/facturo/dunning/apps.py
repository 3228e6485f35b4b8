from django.apps import AppConfig


class DunningConfig(AppConfig):
    name = "facturo.dunning"
    label = "dunning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from facturo.notifications import services as notifications

        from . import services

        # Right before an outbox e-mail of ours is delivered, the balance is checked again.
        notifications.register_send_check(services.OUTBOX_PREFIX, services.still_wanted)
