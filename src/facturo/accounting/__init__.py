"""Accounting: the double-entry ledger fed by business events (docs/accounting.md)."""
