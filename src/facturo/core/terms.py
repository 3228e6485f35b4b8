"""Payment terms and due dates (art. L441-10 C. com.)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from .errors import BusinessError, _


class TermsKind(StrEnum):
    ON_RECEIPT = "on_receipt"  # à réception
    NET = "net"  # N jours nets
    DAYS_END_OF_MONTH = "days_end_of_month"  # N jours fin de mois (N days, then end of month)
    END_OF_MONTH_PLUS = "end_of_month_plus"  # fin de mois + N jours


@dataclass(frozen=True)
class PaymentTerms:
    kind: TermsKind
    days: int = 0

    def __post_init__(self) -> None:
        if self.days < 0 or self.days > 365:
            raise BusinessError(
                "terms.invalid_days",
                _("Payment terms must be between 0 and 365 days."),
                field="payment_terms_days",
            )

    def describe(self, language: str) -> str:
        fr = language.startswith("fr")
        match self.kind:
            case TermsKind.ON_RECEIPT:
                return "À réception" if fr else "Due on receipt"
            case TermsKind.NET:
                return f"{self.days} jours nets" if fr else f"Net {self.days} days"
            case TermsKind.DAYS_END_OF_MONTH:
                return f"{self.days} jours fin de mois" if fr else f"{self.days} days end of month"
            case TermsKind.END_OF_MONTH_PLUS:
                return (
                    f"Fin de mois + {self.days} jours" if fr else f"End of month + {self.days} days"
                )


def end_of_month(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def due_date(issue_date: date, terms: PaymentTerms) -> date:
    match terms.kind:
        case TermsKind.ON_RECEIPT:
            return issue_date
        case TermsKind.NET:
            return issue_date + timedelta(days=terms.days)
        case TermsKind.DAYS_END_OF_MONTH:
            return end_of_month(issue_date + timedelta(days=terms.days))
        case TermsKind.END_OF_MONTH_PLUS:
            return end_of_month(issue_date) + timedelta(days=terms.days)
    raise AssertionError(terms.kind)


def legal_latest_due_date(issue_date: date) -> date:
    """Latest due date art. L441-10 I allows: 60 days from the invoice date, or 45 days end of
    month (both readings of « 45 jours fin de mois » are accepted; we allow the later one)."""
    return max(
        issue_date + timedelta(days=60),
        end_of_month(issue_date) + timedelta(days=45),
        end_of_month(issue_date + timedelta(days=45)),
    )


def check_due_date(issue_date: date, due: date) -> None:
    if due < issue_date:
        raise BusinessError(
            "terms.due_before_issue",
            _("The due date cannot be before the invoice date."),
            field="due_date",
        )
    latest = legal_latest_due_date(issue_date)
    if due > latest:
        raise BusinessError(
            "terms.beyond_legal_maximum",
            _(
                "The due date %(due)s exceeds the legal maximum (%(latest)s): art. L441-10 of the "
                "Code de commerce allows 60 days from the invoice date or 45 days end of month."
            ),
            field="due_date",
            due=due.isoformat(),
            latest=latest.isoformat(),
        )
