"""Shared fixtures: the database engine parametrisation, an organization with its owner."""

from __future__ import annotations

import decimal
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from facturo.foundation.db import using_database

IN_CI = os.environ.get("CI") == "true"
ENGINES = ["sqlite", "postgresql"]


def _postgres_reachable() -> str | None:
    """None when reachable, else the reason."""
    if "postgresql" not in settings.DATABASES:
        return "FACTURO_DATABASE_URL is set: only that database is tested"
    import psycopg

    try:
        psycopg.connect(settings.TEST_POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {settings.TEST_POSTGRES_URL}: {exc}"
    return None


@pytest.fixture(autouse=True)
def _float_trap() -> Iterator[None]:
    """A stray float in money arithmetic fails loudly (CONVENTIONS.md)."""
    ctx = decimal.getcontext()
    previous = ctx.traps[decimal.FloatOperation]
    ctx.traps[decimal.FloatOperation] = True
    yield
    ctx.traps[decimal.FloatOperation] = previous


def alias_for(engine: str) -> str:
    if engine == "sqlite":
        return "default" if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") else ""
    if "postgresql" in settings.DATABASES:
        return "postgresql"
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return "default"
    return ""


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test once on SQLite and once on PostgreSQL (skipped, with the reason, when
    PostgreSQL is absent — except in CI, where it must run)."""
    name: str = request.param
    alias = alias_for(name)
    if not alias:
        pytest.skip(f"{name} is not configured in this run")
    if name == "postgresql":
        reason = _postgres_reachable()
        if reason and alias == "postgresql":
            if IN_CI:
                pytest.fail(f"CI=true but {reason}")
            pytest.skip(reason)
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("django_db_setup")
    if transactional:
        request.getfixturevalue("transactional_db")
    else:
        request.getfixturevalue("db")
    with using_database(alias):
        yield name


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests using `engine` touch both databases.
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            marker = item.get_closest_marker("django_db")
            kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
            kwargs["databases"] = [a for a in ("default", "postgresql") if a in settings.DATABASES]
            item.add_marker(pytest.mark.django_db(**kwargs), append=False)


def _flush_around_triggers() -> None:
    """SQLite flushes with DELETE, which the immutability triggers refuse (as they should).
    In tests only, drop them for the flush and put them back right after."""
    from django.db.backends.sqlite3.operations import DatabaseOperations

    from facturo.accounting import triggers as ledger_triggers
    from facturo.invoicing.triggers import SQLITE, SQLITE_REVERSE

    original = DatabaseOperations.sql_flush
    if getattr(original, "_facturo", False):
        return

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        statements = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if not statements:
            return statements
        return [
            *SQLITE_REVERSE,
            *ledger_triggers.SQLITE_REVERSE,
            *ledger_triggers.SQLITE_CHAIN_REVERSE,
            *statements,
            *SQLITE,
            *ledger_triggers.SQLITE,
            *ledger_triggers.SQLITE_CHAIN,
        ]

    sql_flush._facturo = True  # type: ignore[attr-defined]
    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]


_flush_around_triggers()
