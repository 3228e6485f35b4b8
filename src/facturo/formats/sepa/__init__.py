"""SEPA formats without Django: creditor references (ISO 11649), pain.008 direct debits."""
