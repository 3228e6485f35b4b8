"""Customer portal: signed, expiring links to an invoice (no login)."""
