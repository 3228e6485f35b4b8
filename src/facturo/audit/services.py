"""Recording and verifying the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from facturo.core.chain import GENESIS, ChainBreak, link_hash, verify_chain
from facturo.foundation.db import current_alias

from .models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class Actor:
    id: str = ""
    label: str = "system"
    ip: str | None = None


SYSTEM = Actor()


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, cls=DjangoJSONEncoder)) if value is not None else None


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
    """Append an event to the organization's chain. Call inside the service's transaction."""
    alias = current_alias()
    heads = AuditChainHead.objects.using(alias).select_for_update()
    try:
        head = heads.get(organization_id=organization_id)
    except AuditChainHead.DoesNotExist:  # first event: two creators race on the primary key
        AuditChainHead.objects.using(alias).bulk_create(
            [AuditChainHead(organization_id=organization_id, last_seq=0, last_hash=GENESIS)],
            ignore_conflicts=True,
        )
        head = heads.get(organization_id=organization_id)
    event = AuditEvent(
        organization_id=organization_id,
        seq=head.last_seq + 1,
        at=timezone.now(),
        actor_id=actor.id,
        actor_label=actor.label,
        ip=actor.ip,
        action=action,
        object_type=object_type or (obj._meta.label_lower if obj is not None else ""),
        object_id=object_id or (str(obj.pk) if obj is not None else ""),
        before=_jsonable(before),
        after=_jsonable(after),
        previous_hash=head.last_hash,
    )
    event.hash = link_hash(event.previous_hash, event.payload())
    event.save(using=alias)
    head.last_seq, head.last_hash = event.seq, event.hash
    head.save(using=alias, update_fields=["last_seq", "last_hash"])
    return event


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
