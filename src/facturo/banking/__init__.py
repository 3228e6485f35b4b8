"""Bank accounts, statement imports and reconciliation of bank lines with invoices (issue 6)."""
