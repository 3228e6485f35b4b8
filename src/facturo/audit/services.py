"""Recording and verifying the audit trail."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from facturo.core.chain import GENESIS, ChainBreak, link_hash, verify_chain
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

    Hand-written SQL (it runs in every write): lock the chain head, insert the event and
    move the head — two statements on PostgreSQL (insert and head update in one), three on
    SQLite."""
    conn = rawsql.connection()
    sql = _record_sql()
    org = rawsql.prep(AuditChainHead, "organization_id", organization_id)
    with conn.cursor() as cursor:
        cursor.execute(sql.lock_head, [org])
        row = cursor.fetchone()
        if row is None:  # first event: two creators race on the primary key
            AuditChainHead.objects.using(conn.alias).bulk_create(
                [AuditChainHead(organization_id=organization_id, last_seq=0, last_hash=GENESIS)],
                ignore_conflicts=True,
            )
            cursor.execute(sql.lock_head, [org])
            row = cursor.fetchone()
        last_seq, last_hash = row
        event = AuditEvent(
            organization_id=organization_id,
            seq=last_seq + 1,
            at=timezone.now(),
            actor_id=actor.id,
            actor_label=actor.label,
            ip=actor.ip,
            action=action,
            object_type=object_type or (obj._meta.label_lower if obj is not None else ""),
            object_id=object_id or (str(obj.pk) if obj is not None else ""),
            before=_jsonable(before),
            after=_jsonable(after),
            previous_hash=last_hash,
        )
        event.hash = link_hash(event.previous_hash, event.payload())
        params = [rawsql.prep(AuditEvent, f, getattr(event, f)) for f in _EVENT_FIELDS]
        head_params = [event.seq, event.hash, org]
        if sql.postgresql:
            cursor.execute(sql.insert_and_move_head, params + head_params)
            event.pk = cursor.fetchone()[0]
        else:
            cursor.execute(sql.insert, params)
            event.pk = cursor.lastrowid
            cursor.execute(sql.move_head, head_params)
    event._state.adding = False
    event._state.db = conn.alias
    return event


_EVENT_FIELDS = tuple(f.attname for f in AuditEvent._meta.concrete_fields if not f.primary_key)


@dataclass(frozen=True)
class _RecordSql:
    lock_head: str
    insert: str
    move_head: str
    insert_and_move_head: str
    postgresql: bool


_record_sql_cache: dict[str, _RecordSql] = {}


def _record_sql() -> _RecordSql:
    conn = rawsql.connection()
    cached = _record_sql_cache.get(conn.alias)
    if cached is None:
        pg = rawsql.is_postgresql(conn)
        # Identifiers only come from the models' metadata; every value is a parameter.
        names = {
            "head": rawsql.table(AuditChainHead),
            "event": rawsql.table(AuditEvent),
            "columns": ", ".join(rawsql.column(AuditEvent, f) for f in _EVENT_FIELDS),
            "values": ", ".join(["%s"] * len(_EVENT_FIELDS)),
            "lock": " FOR UPDATE" if pg else "",
        }
        insert = rawsql.compose("INSERT INTO {event} ({columns}) VALUES ({values})", **names)
        move = rawsql.compose(
            "UPDATE {head} SET last_seq = %s, last_hash = %s WHERE organization_id = %s", **names
        )
        cached = _RecordSql(
            lock_head=rawsql.compose(
                "SELECT last_seq, last_hash FROM {head} WHERE organization_id = %s{lock}", **names
            ),
            insert=insert,
            move_head=move,
            insert_and_move_head=rawsql.compose(
                "WITH e AS ({insert} RETURNING id), h AS ({move}) SELECT id FROM e",
                insert=insert,
                move=move,
            ),
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
