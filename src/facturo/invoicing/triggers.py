"""SQL of the triggers that make issued invoices, their lines and audit events immutable.

The services never try; the triggers stop the admin, a script or raw SQL from doing it
silently. (Someone who can drop triggers can still alter rows: `facturo check` then finds
the altered record through the hash chains.) Changing this SQL needs a new migration.
"""

FROZEN = [
    "organization_id",
    "kind",
    "customer_id",
    "currency",
    "number",
    "issue_date",
    "due_date",
    "snapshot",
    "chain_hash",
    "chain_previous_hash",
    "total_excl_vat",
    "total_vat",
    "total_incl_vat",
    "series_id",
    "period_key",
    "sequence_value",
    "series_position",
    "credited_invoice_id",
]

SQLITE_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in FROZEN)
PG_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in FROZEN)

SQLITE = [
    f"""CREATE TRIGGER invoice_issued_immutable BEFORE UPDATE ON invoicing_invoice
    FOR EACH ROW WHEN OLD.number IS NOT NULL AND ({SQLITE_CHANGED})
    BEGIN SELECT RAISE(ABORT, 'invoice.already_issued: an issued invoice cannot be changed'); END;""",
    """CREATE TRIGGER invoice_issued_undeletable BEFORE DELETE ON invoicing_invoice
    FOR EACH ROW WHEN OLD.number IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'invoice.already_issued: an issued invoice cannot be deleted'); END;""",
    """CREATE TRIGGER invoice_line_frozen_update BEFORE UPDATE ON invoicing_invoiceline
    FOR EACH ROW WHEN (SELECT number FROM invoicing_invoice WHERE id = OLD.invoice_id) IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'invoice.already_issued: lines of an issued invoice are frozen'); END;""",
    """CREATE TRIGGER invoice_line_frozen_delete BEFORE DELETE ON invoicing_invoiceline
    FOR EACH ROW WHEN (SELECT number FROM invoicing_invoice WHERE id = OLD.invoice_id) IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'invoice.already_issued: lines of an issued invoice are frozen'); END;""",
    """CREATE TRIGGER invoice_line_frozen_insert BEFORE INSERT ON invoicing_invoiceline
    FOR EACH ROW WHEN (SELECT number FROM invoicing_invoice WHERE id = NEW.invoice_id) IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'invoice.already_issued: lines of an issued invoice are frozen'); END;""",
    """CREATE TRIGGER audit_event_append_only_u BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit.append_only: audit events cannot be changed'); END;""",
    """CREATE TRIGGER audit_event_append_only_d BEFORE DELETE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit.append_only: audit events cannot be deleted'); END;""",
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {n};"
    for n in (
        "invoice_issued_immutable",
        "invoice_issued_undeletable",
        "invoice_line_frozen_update",
        "invoice_line_frozen_delete",
        "invoice_line_frozen_insert",
        "audit_event_append_only_u",
        "audit_event_append_only_d",
    )
]

PG = [
    f"""CREATE FUNCTION facturo_invoice_immutable() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF OLD.number IS NOT NULL THEN
          RAISE EXCEPTION 'invoice.already_issued: an issued invoice cannot be deleted';
        END IF;
        RETURN OLD;
      END IF;
      IF OLD.number IS NOT NULL AND ({PG_CHANGED}) THEN
        RAISE EXCEPTION 'invoice.already_issued: an issued invoice cannot be changed';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER invoice_immutable BEFORE UPDATE OR DELETE ON invoicing_invoice
    FOR EACH ROW EXECUTE FUNCTION facturo_invoice_immutable();""",
    """CREATE FUNCTION facturo_invoice_line_frozen() RETURNS trigger AS $$
    DECLARE parent_id uuid;
    BEGIN
      IF TG_OP = 'INSERT' THEN parent_id := NEW.invoice_id; ELSE parent_id := OLD.invoice_id; END IF;
      IF (SELECT number FROM invoicing_invoice WHERE id = parent_id) IS NOT NULL THEN
        RAISE EXCEPTION 'invoice.already_issued: lines of an issued invoice are frozen';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER invoice_line_frozen BEFORE INSERT OR UPDATE OR DELETE ON invoicing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION facturo_invoice_line_frozen();""",
    """CREATE FUNCTION facturo_audit_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'audit.append_only: audit events cannot be changed or deleted'; END
    $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION facturo_audit_append_only();""",
]
PG_REVERSE = [
    "DROP TRIGGER IF EXISTS invoice_immutable ON invoicing_invoice;",
    "DROP FUNCTION IF EXISTS facturo_invoice_immutable();",
    "DROP TRIGGER IF EXISTS invoice_line_frozen ON invoicing_invoiceline;",
    "DROP FUNCTION IF EXISTS facturo_invoice_line_frozen();",
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;",
    "DROP FUNCTION IF EXISTS facturo_audit_append_only();",
]
