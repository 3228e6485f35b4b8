from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "facturo.jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the Huey tasks and hands the delivery trigger to notifications, so that
        # the web process enqueues e-mail delivery right after commit.
        from . import tasks  # noqa: F401
