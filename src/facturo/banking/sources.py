"""Where statements come from: the interface a live bank feed will implement later.

A source yields raw statement documents (the bytes a bank delivers: CAMT, OFX, MT940, CSV)
for one bank account; ``services.import_from_source`` parses and imports each, with the
same idempotency as a file upload, so fetching overlapping periods is harmless.
File upload is the first source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StatementDocument:
    filename: str
    data: bytes


@runtime_checkable
class StatementSource(Protocol):
    """A provider of statements for one account (PSD2 aggregator, EBICS, SFTP drop…)."""

    @property
    def name(self) -> str:
        """Stored on each import ("file", "ebics", …)."""
        ...

    def fetch(self, iban: str, since: dt.date | None) -> Iterator[StatementDocument]:
        """The documents booked since ``since`` (``None``: everything available). Overlaps
        are fine: lines already imported are counted as duplicates."""
        ...


@dataclass(frozen=True)
class FileSource:
    """One uploaded file (the web form, the API, the CLI)."""

    filename: str
    data: bytes
    name: str = "file"

    def fetch(self, iban: str, since: dt.date | None) -> Iterator[StatementDocument]:
        yield StatementDocument(self.filename, self.data)
