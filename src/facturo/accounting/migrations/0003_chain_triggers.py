"""The entry insert checks it continues the chain and advances the chain head
(SQL in facturo.accounting.triggers)."""

from django.db import migrations

from facturo.accounting.triggers import (
    PG_CHAIN,
    PG_CHAIN_REVERSE,
    SQLITE_CHAIN,
    SQLITE_CHAIN_REVERSE,
)


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    pg = schema_editor.connection.vendor == "postgresql"
    for sql in PG_CHAIN if pg else SQLITE_CHAIN:
        schema_editor.execute(sql)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    pg = schema_editor.connection.vendor == "postgresql"
    for sql in PG_CHAIN_REVERSE if pg else SQLITE_CHAIN_REVERSE:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("accounting", "0002_triggers")]
    operations = [migrations.RunPython(forwards, backwards)]
