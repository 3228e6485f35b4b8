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


def subscribe(event_type: type[E], handler: Callable[[E], None]) -> None:
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def publish(event: object) -> None:
    for handler in list(_handlers.get(type(event), ())):
        handler(event)
