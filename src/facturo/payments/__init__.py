"""Payments: recorded, allocated to invoices, collected online (Stripe) or by SEPA debit."""
