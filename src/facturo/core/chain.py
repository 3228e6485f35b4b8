"""Hash chains for append-only records (audit events, issued documents).

Each record stores the hash of the previous record of its chain; the hash covers the
record's canonical JSON and that previous hash, so altering or removing any record breaks
every later link, and the first mismatch pinpoints the altered record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical_json(payload: Any) -> str:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def link_hash(previous_hash: str, payload: Any) -> str:
    return hashlib.sha256((previous_hash + canonical_json(payload)).encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    position: int  # 0-based index in the chain
    record_id: str
    reason: str


def verify_chain(records: Iterable[tuple[str, Any, str, str]]) -> ChainBreak | None:
    """Check ``(record_id, payload, stored_previous_hash, stored_hash)`` in chain order."""
    expected_previous = GENESIS
    for position, (record_id, payload, previous_hash, stored_hash) in enumerate(records):
        if previous_hash != expected_previous:
            return ChainBreak(position, record_id, "previous hash does not match the chain")
        if link_hash(previous_hash, payload) != stored_hash:
            return ChainBreak(position, record_id, "content does not match its hash")
        expected_previous = stored_hash
    return None
