"""Which database a unit of work uses.

Production always uses ``default``. Tests run the same services against SQLite and
PostgreSQL in one session by switching the alias in a context variable; the router sends
every query there, and services open transactions with :func:`atomic`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.db import transaction

_alias: ContextVar[str] = ContextVar("facturo_db_alias", default="default")


def current_alias() -> str:
    return _alias.get()


@contextlib.contextmanager
def using_database(alias: str) -> Iterator[None]:
    token = _alias.set(alias)
    try:
        yield
    finally:
        _alias.reset(token)


def atomic(**kwargs: Any) -> Any:
    return transaction.atomic(using=current_alias(), **kwargs)


def on_commit(func: Any) -> None:
    transaction.on_commit(func, using=current_alias())


def is_postgresql() -> bool:
    from django.db import connections

    return connections[current_alias()].vendor == "postgresql"


class ContextRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str:
        return current_alias()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return current_alias()

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True
