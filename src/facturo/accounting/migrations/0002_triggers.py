"""Install the ledger's balance and immutability triggers (SQL in facturo.accounting.triggers)."""

from django.db import migrations

from facturo.accounting.triggers import PG, PG_REVERSE, SQLITE, SQLITE_REVERSE


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    statements = PG if schema_editor.connection.vendor == "postgresql" else SQLITE
    for sql in statements:
        schema_editor.execute(sql)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    statements = PG_REVERSE if schema_editor.connection.vendor == "postgresql" else SQLITE_REVERSE
    for sql in statements:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("accounting", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
