"""Hand-written SQL for hot paths, with Django's own column lists and value conversions.

Building a query through the ORM costs ~0.1–0.3 ms of Python per statement (compiling the
WHERE tree, the select list, the converters), several times what SQLite or PostgreSQL on
loopback need to run it. Hot paths (issuing an invoice, appending to the audit chain) write
their SQL by hand; this module keeps them honest: the select lists come from the models'
concrete fields, rows go through the same converters as the ORM (dates on SQLite, exact
decimals, JSON, UUIDs) and parameters through ``get_db_prep_save``. Everything that depends
on the model is computed once per (database alias, model) and cached.

Statements still go through Django's cursor, so ``CaptureQueriesContext``, execute
wrappers and the SQLite ``%s`` → ``?`` translation apply as for ORM queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, signals
from django.db.models.base import ModelState

from .db import current_alias

M = TypeVar("M", bound=Model)
_Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


def connection() -> BaseDatabaseWrapper:
    return connections[current_alias()]


def is_postgresql(conn: BaseDatabaseWrapper) -> bool:
    return conn.vendor == "postgresql"


@dataclass(frozen=True)
class Columns:
    """The selected columns of one model under a table alias, and how to read them back."""

    model: type[Model]
    attnames: tuple[str, ...]
    sql: str  # "t"."col", "t"."col2", …
    converters: tuple[tuple[int, tuple[_Converter, ...], Any], ...]  # (index, funcs, Col)
    alias: str  # database alias
    plain_init: bool  # no pre_init/post_init receivers: instances can skip Model.__init__

    def __len__(self) -> int:
        return len(self.attnames)

    def values(
        self, row: Sequence[Any], offset: int = 0, conn: BaseDatabaseWrapper | None = None
    ) -> list[Any]:
        conn = conn or connections[self.alias]
        out = list(row[offset : offset + len(self.attnames)])
        for i, funcs, col in self.converters:
            value = out[i]
            for func in funcs:
                value = func(value, col, conn)
            out[i] = value
        return out

    def instance(
        self, row: Sequence[Any], offset: int = 0, conn: BaseDatabaseWrapper | None = None
    ) -> Any:
        """A model instance as the ORM would build it (fields not selected are deferred and
        load on access). Without init signal receivers, the attributes are set directly,
        which is what ``Model.__init__`` ends up doing, at a fraction of its cost."""
        values = self.values(row, offset, conn)
        if not self.plain_init:
            return self.model.from_db(self.alias, list(self.attnames), values)
        obj = self.model.__new__(self.model)
        obj.__dict__.update(zip(self.attnames, values, strict=True))
        state = ModelState()
        state.adding = False
        state.db = self.alias
        obj._state = state
        return obj


_columns: dict[tuple[str, type[Model], str, tuple[str, ...] | None], Columns] = {}


def columns(model: type[M], table_alias: str, only: Sequence[str] | None = None) -> Columns:
    """Columns of ``model`` (all concrete fields, or the attnames in ``only``)."""
    alias = current_alias()
    key = (alias, model, table_alias, tuple(only) if only is not None else None)
    cached = _columns.get(key)
    if cached is not None:
        return cached
    conn = connections[alias]
    qn = conn.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if only is None or f.attname in only]
    converters = []
    for i, f in enumerate(fields):
        col = f.get_col(table_alias)
        funcs = tuple(conn.ops.get_db_converters(col)) + tuple(col.get_db_converters(conn))
        if funcs:
            converters.append((i, funcs, col))
    result = Columns(
        model=model,
        attnames=tuple(f.attname for f in fields),
        sql=", ".join(f"{qn(table_alias)}.{qn(str(f.column))}" for f in fields),
        converters=tuple(converters),
        alias=alias,
        plain_init=not (
            signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model)
        ),
    )
    _columns[key] = result
    return result


def set_related(obj: Model, name: str, related: Model | None) -> None:
    """``obj.<name> = related`` for a foreign key whose id ``obj`` already holds, without
    the descriptor's checks (the related object was just read for that id)."""
    obj._state.fields_cache[name] = related


def preparer(model: type[Model], attnames: Sequence[str]) -> Callable[..., list[Any]]:
    """A function ``(conn, obj) -> [db values]`` for these attributes of ``obj``."""
    fields = [_field(model, a) for a in attnames]

    def prepare(conn: BaseDatabaseWrapper, obj: Any) -> list[Any]:
        return [f.get_db_prep_save(getattr(obj, f.attname), conn) for f in fields]

    return prepare


def prep(
    model: type[Model], attname: str, value: Any, conn: BaseDatabaseWrapper | None = None
) -> Any:
    """A Python value as the database adapter wants it for ``model.attname``."""
    return _field(model, attname).get_db_prep_save(value, conn or connection())


_fields: dict[tuple[type[Model], str], Any] = {}


def _field(model: type[Model], attname: str) -> Any:
    key = (model, attname)
    field = _fields.get(key)
    if field is None:
        field = next(f for f in model._meta.concrete_fields if f.attname == attname)
        _fields[key] = field
    return field


def column(model: type[Model], attname: str) -> str:
    return connection().ops.quote_name(_field(model, attname).column)


def table(model: type[Model]) -> str:
    return connection().ops.quote_name(model._meta.db_table)


def compose(template: str, **identifiers: str) -> str:
    """Fill ``{name}`` slots of an SQL template with identifiers or column lists built from
    model metadata (never with values: values are always ``%s`` parameters)."""
    return template.format(**identifiers)
