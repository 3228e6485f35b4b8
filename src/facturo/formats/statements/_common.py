"""What every statement parser shares: size limit, strict/lenient collection of rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from facturo.core.bank import RejectedRow, StatementError
from facturo.core.money import CURRENCY_EXPONENTS

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # 64 MiB: years of statements of a small business


def check_size(data: bytes, source: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise StatementError(
            source,
            "file",
            f"the file has {len(data)} bytes, more than the limit of {max_bytes}; "
            "split it or raise the limit",
            code="statement.too_large",
        )
    if not data.strip():
        raise StatementError(source, "file", "the file is empty", code="statement.empty")


def decimal_amount(text: str, source: str, position: str, what: str = "amount") -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise StatementError(
            source, position, f"expected a decimal {what} such as 1234.56, found {text!r}"
        ) from None
    if not value.is_finite():
        raise StatementError(source, position, f"expected a finite {what}, found {text!r}")
    return value


def check_currency(text: str, source: str, position: str) -> str:
    currency = (text or "").strip().upper()
    if currency not in CURRENCY_EXPONENTS:
        raise StatementError(
            source, position, f"expected an ISO 4217 currency code such as EUR, found {text!r}"
        )
    return currency


@dataclass
class Rows:
    """Collects rejected rows when the caller chose "import valid lines", else raises."""

    source: str
    import_valid_lines: bool
    rejected: list[RejectedRow] = field(default_factory=list)

    def reject(self, error: StatementError, raw: str = "") -> None:
        if not self.import_valid_lines:
            raise error
        self.rejected.append(RejectedRow(error.position, error.problem, raw[:500]))
