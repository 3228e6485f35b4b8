"""Recording and verifying the audit trail."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from facturo.core.chain import GENESIS, ChainBreak, canonical_json, link_hash, verify_chain
from facturo.foundation import rawsql

from .models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class Actor:
    id: str = ""
    label: str = "system"
    ip: str | None = None


SYSTEM = Actor()


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from a JSON column (Decimals, dates, UUIDs as strings)."""
    if value is None:
        return None
    if type(value) is dict and all(type(v) in _PLAIN for v in value.values()):
        return dict(value)  # the common case: a flat dict of plain values
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


_PLAIN = (str, int, bool, type(None))


def record(
    organization_id: uuid.UUID,
    actor: Actor,
    action: str,
    obj: Any = None,
    *,
    object_type: str = "",
    object_id: str = "",
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append an event to the organization's chain. Call inside the service's transaction.

    It runs in every write, so it is hand-written SQL (ADR 10). PostgreSQL: one statement
    locks the chain head, hashes, inserts the event and moves the head — the event's
    canonical JSON is built here but for its ``seq``, the last key in sorted order, which
    the statement appends after reading the head (``sha256`` of the same UTF-8 bytes as
    :func:`facturo.core.chain.link_hash`). SQLite: lock (the database is already locked
    by ``BEGIN IMMEDIATE``), insert, move, in-process.
    """
    event = AuditEvent(
        organization_id=organization_id,
        at=timezone.now(),
        actor_id=actor.id,
        actor_label=actor.label,
        ip=actor.ip,
        action=action,
        object_type=object_type or (obj._meta.label_lower if obj is not None else ""),
        object_id=object_id or (str(obj.pk) if obj is not None else ""),
        before=_jsonable(before),
        after=_jsonable(after),
    )
    pending = _deferred.get()
    if pending is not None:
        pending.append(_Pending(event, _json_before_seq(event), _record_sql().event_params))
        return event
    conn = rawsql.connection()
    sql = _record_sql()
    org = rawsql.prep(AuditChainHead, "organization_id", organization_id, conn)
    with conn.cursor() as cursor:
        if sql.postgresql:
            head = _json_before_seq(event)  # the statement appends seq + "}"
            params = [org, head, *sql.event_params(conn, event), org]
            cursor.execute(sql.append, params)
            row = cursor.fetchone()
            if row is None:  # the organization's first event
                _create_head(conn, organization_id)
                cursor.execute(sql.append, params)
                row = cursor.fetchone()
            event.pk, event.seq, event.previous_hash, event.hash = row
        else:
            row = _lock_head(cursor, conn, sql, organization_id, org)
            event.seq, event.previous_hash = row[0] + 1, row[1]
            event.hash = link_hash(event.previous_hash, event.payload())
            cursor.execute(
                sql.insert,
                [*sql.event_params(conn, event), event.seq, event.previous_hash, event.hash],
            )
            event.pk = cursor.lastrowid
            cursor.execute(sql.move_head, [event.seq, event.hash, org])
    event._state.adding = False
    event._state.db = conn.alias
    return event


@dataclass
class _Pending:
    """An event waiting for its place in the chain, with everything that does not depend
    on that place computed while recording (outside the chain head's lock)."""

    event: AuditEvent
    head: str  # its canonical JSON up to the seq, the last key: '{…,"seq":'
    prepare: Any  # (conn, event) -> column values


def _json_before_seq(event: AuditEvent) -> str:
    payload = event.payload()
    del payload["seq"]
    return canonical_json(payload)[:-1] + ',"seq":'


_deferred: ContextVar[list[_Pending] | None] = ContextVar("facturo_audit_deferred", default=None)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Collect the events recorded inside the block and append them all when it ends: one
    chain-head lock and one head move per organization, instead of a locked round trip per
    event. Use it inside the transaction (an exception discards the events with the rest of
    the work); the events keep the order they were recorded in.

    Batch operations use it so that the organization's chain head — which serialises every
    write of the organization — is held only for the last instants of their transaction;
    each event's JSON is built when it is recorded, only the hashing waits for the head.
    Events recorded in the block have no ``seq``/``hash`` until it ends."""
    if _deferred.get() is not None:  # nested: the outer block appends
        yield
        return
    pending: list[_Pending] = []
    token = _deferred.set(pending)
    try:
        yield
    finally:
        _deferred.reset(token)
    _append_all(pending)


def _append_all(pending: list[_Pending]) -> None:
    """Append the events to their organizations' chains, in order. The hash is
    :func:`link_hash` of the payload, written as ``head + seq + "}"`` (``seq`` is the last
    key of the canonical JSON), as the PostgreSQL statement of :func:`record` does."""
    if not pending:
        return
    conn = rawsql.connection()
    sql = _record_sql()
    by_org: dict[uuid.UUID, list[_Pending]] = {}
    for p in pending:
        by_org.setdefault(p.event.organization_id, []).append(p)
    with conn.cursor() as cursor:
        for organization_id in sorted(by_org, key=str):  # one lock order for every caller
            org = rawsql.prep(AuditChainHead, "organization_id", organization_id, conn)
            seq, previous = _lock_head(cursor, conn, sql, organization_id, org)
            rows: list[list[Any]] = []
            for p in by_org[organization_id]:
                seq += 1
                event = p.event
                event.seq, event.previous_hash = seq, previous
                event.hash = previous = hashlib.sha256(
                    f"{previous}{p.head}{seq}}}".encode()
                ).hexdigest()
                rows.append([*p.prepare(conn, event), seq, event.previous_hash, event.hash])
                event._state.adding = False
                event._state.db = conn.alias
            cursor.executemany(sql.insert, rows)
            cursor.execute(sql.move_head, [seq, previous, org])


def _lock_head(
    cursor: Any, conn: Any, sql: _RecordSql, organization_id: uuid.UUID, org: Any
) -> tuple[int, str]:
    """Lock the organization's chain head (creating it for its first event): (seq, hash)."""
    cursor.execute(sql.lock_head, [org])
    row = cursor.fetchone()
    if row is None:
        _create_head(conn, organization_id)
        cursor.execute(sql.lock_head, [org])
        row = cursor.fetchone()
    return int(row[0]), str(row[1])


def _create_head(conn: Any, organization_id: uuid.UUID) -> None:
    """The chain head of an organization's first event (two creators race on the key)."""
    AuditChainHead.objects.using(conn.alias).bulk_create(
        [AuditChainHead(organization_id=organization_id, last_seq=0, last_hash=GENESIS)],
        ignore_conflicts=True,
    )


# Columns the caller provides; seq, previous_hash and hash come from the chain head.
_EVENT_FIELDS = tuple(
    f.attname
    for f in AuditEvent._meta.concrete_fields
    if not f.primary_key and f.attname not in ("seq", "previous_hash", "hash")
)


@dataclass(frozen=True)
class _RecordSql:
    lock_head: str
    insert: str
    move_head: str
    append: str  # PostgreSQL: lock, hash, insert, move in one statement
    event_params: Any
    postgresql: bool


_record_sql_cache: dict[str, _RecordSql] = {}


def _record_sql() -> _RecordSql:
    conn = rawsql.connection()
    cached = _record_sql_cache.get(conn.alias)
    if cached is None:
        pg = rawsql.is_postgresql(conn)
        fields = [AuditEvent._meta.get_field(f) for f in _EVENT_FIELDS]
        # Identifiers and types only come from the models' metadata; values are parameters
        # (cast to the column's type: they are selected, not inserted through VALUES).
        names = {
            "head": rawsql.table(AuditChainHead),
            "event": rawsql.table(AuditEvent),
            "columns": ", ".join(rawsql.column(AuditEvent, f) for f in _EVENT_FIELDS),
            "values": ", ".join(["%s"] * len(_EVENT_FIELDS)),
            "typed_values": ", ".join(f"%s::{f.db_type(conn)}" for f in fields),
            "lock": " FOR UPDATE" if pg else "",
        }
        cached = _RecordSql(
            lock_head=rawsql.compose(
                "SELECT last_seq, last_hash FROM {head} WHERE organization_id = %s{lock}", **names
            ),
            insert=rawsql.compose(
                "INSERT INTO {event} ({columns}, seq, previous_hash, hash) "
                "VALUES ({values}, %s, %s, %s)",
                **names,
            ),
            move_head=rawsql.compose(
                "UPDATE {head} SET last_seq = %s, last_hash = %s WHERE organization_id = %s",
                **names,
            ),
            append=rawsql.compose(
                "WITH h AS (SELECT last_seq + 1 AS seq, last_hash FROM {head} "
                "WHERE organization_id = %s FOR UPDATE), "
                "v AS (SELECT seq, last_hash, encode(sha256(convert_to("
                "last_hash || %s::text || seq::text || '}}', 'UTF8')), 'hex') AS hash FROM h), "
                "e AS (INSERT INTO {event} ({columns}, seq, previous_hash, hash) "
                "SELECT {typed_values}, v.seq, v.last_hash, v.hash FROM v "
                "RETURNING id, seq, previous_hash, hash), "
                "m AS (UPDATE {head} SET last_seq = e.seq, last_hash = e.hash FROM e "
                "WHERE {head}.organization_id = %s) "
                "SELECT id, seq, previous_hash, hash FROM e",
                **names,
            ),
            event_params=rawsql.preparer(AuditEvent, _EVENT_FIELDS),
            postgresql=pg,
        )
        _record_sql_cache[conn.alias] = cached
    return cached


def verify(organization_id: uuid.UUID) -> ChainBreak | None:
    events = AuditEvent.objects.filter(organization_id=organization_id).order_by("seq")
    broken = verify_chain(
        (f"audit #{e.seq}", e.payload(), e.previous_hash, e.hash) for e in events.iterator()
    )
    if broken:
        return broken
    head = AuditChainHead.objects.filter(organization_id=organization_id).first()
    last = events.last()
    if head and (last is None or head.last_hash != last.hash):
        return ChainBreak(head.last_seq, f"audit #{head.last_seq}", "the last records were removed")
    return None
