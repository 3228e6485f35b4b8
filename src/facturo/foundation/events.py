"""Domain events: how a lower app makes a higher one act without importing it.

An event is a frozen dataclass. Higher apps subscribe in ``AppConfig.ready()``; ``publish``
calls every handler synchronously, in the caller's transaction, so a failing handler rolls
the whole business operation back (ARCHITECTURE.md, « Dependency rules »).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

E = TypeVar("E")
_handlers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)
_batch_forms: dict[Callable[[Any], None], Callable[[list[Any]], None]] = {}


def subscribe(
    event_type: type[E],
    handler: Callable[[E], None],
    *,
    batch: Callable[[list[E]], None] | None = None,
) -> None:
    """Call ``handler`` for every published ``event_type``. ``batch``, if given, handles a
    list of them in one go (:func:`publish_all`) with the same result as ``handler`` called
    on each in order — e.g. one lock and one query for a whole billing run's chunk."""
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)
    if batch is not None:
        _batch_forms[handler] = batch


def publish(event: object) -> None:
    for handler in list(_handlers.get(type(event), ())):
        handler(event)


def publish_all(events: list[Any]) -> None:
    """Publish events of one type, as many :func:`publish` calls would: each handler in
    turn, with the whole list when it has a batch form, else with each event in order."""
    if not events:
        return
    event_type = type(events[0])
    if any(type(e) is not event_type for e in events):
        raise TypeError("publish_all takes events of one type")
    for handler in list(_handlers.get(event_type, ())):
        batch = _batch_forms.get(handler)
        if batch is not None:
            batch(events)
        else:
            for event in events:
                handler(event)
