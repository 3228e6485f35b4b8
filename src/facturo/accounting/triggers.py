"""SQL of the triggers that keep posted entries balanced and immutable.

Lines are inserted first, then their entry: inserting the entry checks that its lines
balance (Σ debit = Σ credit = the entry's total, at least two lines); once the entry
exists no line can be added, changed (except the lettering columns) or removed, and the
entry itself can be neither changed nor deleted. Foreign keys are deferred (Django creates
them ``DEFERRABLE INITIALLY DEFERRED`` on both engines), which allows that order.
Someone who drops the triggers can still alter rows: ``facturo check`` then finds the
altered entry through the hash chain. Changing this SQL needs a new migration.
"""

LINE_FROZEN = [
    "entry_id",
    "organization_id",
    "position",
    "account",
    "account_label",
    "auxiliary",
    "auxiliary_label",
    "label",
    "debit",
    "credit",
    "invoice_id",
]
_SQLITE_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in LINE_FROZEN)
_PG_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in LINE_FROZEN)

_BALANCE = """(SELECT COUNT(*) FROM accounting_entryline WHERE entry_id = NEW.id) < 2
    OR (SELECT COALESCE(SUM(debit), 0) FROM accounting_entryline WHERE entry_id = NEW.id)
       <> NEW.total
    OR (SELECT COALESCE(SUM(credit), 0) FROM accounting_entryline WHERE entry_id = NEW.id)
       <> NEW.total"""

SQLITE = [
    f"""CREATE TRIGGER ledger_entry_balanced BEFORE INSERT ON accounting_entry
    FOR EACH ROW WHEN {_BALANCE}
    BEGIN SELECT RAISE(ABORT, 'ledger.unbalanced: the lines of an entry must balance'); END;""",
    """CREATE TRIGGER ledger_entry_immutable_u BEFORE UPDATE ON accounting_entry
    BEGIN SELECT RAISE(ABORT, 'ledger.posted: a posted entry cannot be changed'); END;""",
    """CREATE TRIGGER ledger_entry_immutable_d BEFORE DELETE ON accounting_entry
    BEGIN SELECT RAISE(ABORT, 'ledger.posted: a posted entry cannot be deleted'); END;""",
    """CREATE TRIGGER ledger_line_sealed BEFORE INSERT ON accounting_entryline
    FOR EACH ROW WHEN EXISTS (SELECT 1 FROM accounting_entry WHERE id = NEW.entry_id)
    BEGIN SELECT RAISE(ABORT, 'ledger.posted: no line can be added to a posted entry'); END;""",
    f"""CREATE TRIGGER ledger_line_immutable_u BEFORE UPDATE ON accounting_entryline
    FOR EACH ROW WHEN {_SQLITE_CHANGED}
    BEGIN SELECT RAISE(ABORT, 'ledger.posted: a posted line cannot be changed'); END;""",
    """CREATE TRIGGER ledger_line_immutable_d BEFORE DELETE ON accounting_entryline
    BEGIN SELECT RAISE(ABORT, 'ledger.posted: a posted line cannot be deleted'); END;""",
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {name};"
    for name in (
        "ledger_entry_balanced",
        "ledger_entry_immutable_u",
        "ledger_entry_immutable_d",
        "ledger_line_sealed",
        "ledger_line_immutable_u",
        "ledger_line_immutable_d",
    )
]

PG = [
    f"""CREATE FUNCTION facturo_ledger_entry_balanced() RETURNS trigger AS $$
    BEGIN
      IF {_BALANCE} THEN
        RAISE EXCEPTION 'ledger.unbalanced: the lines of an entry must balance';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER ledger_entry_balanced BEFORE INSERT ON accounting_entry
    FOR EACH ROW EXECUTE FUNCTION facturo_ledger_entry_balanced();""",
    """CREATE FUNCTION facturo_ledger_entry_immutable() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'ledger.posted: a posted entry cannot be changed or deleted'; END
    $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER ledger_entry_immutable BEFORE UPDATE OR DELETE ON accounting_entry
    FOR EACH ROW EXECUTE FUNCTION facturo_ledger_entry_immutable();""",
    f"""CREATE FUNCTION facturo_ledger_line_immutable() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM accounting_entry WHERE id = NEW.entry_id) THEN
          RAISE EXCEPTION 'ledger.posted: no line can be added to a posted entry';
        END IF;
        RETURN NEW;
      END IF;
      IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger.posted: a posted line cannot be deleted';
      END IF;
      IF {_PG_CHANGED} THEN
        RAISE EXCEPTION 'ledger.posted: a posted line cannot be changed';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;""",  # noqa: S608 - constant SQL
    """CREATE TRIGGER ledger_line_immutable BEFORE INSERT OR UPDATE OR DELETE
    ON accounting_entryline FOR EACH ROW EXECUTE FUNCTION facturo_ledger_line_immutable();""",
]
PG_REVERSE = [
    "DROP TRIGGER IF EXISTS ledger_entry_balanced ON accounting_entry;",
    "DROP FUNCTION IF EXISTS facturo_ledger_entry_balanced();",
    "DROP TRIGGER IF EXISTS ledger_entry_immutable ON accounting_entry;",
    "DROP FUNCTION IF EXISTS facturo_ledger_entry_immutable();",
    "DROP TRIGGER IF EXISTS ledger_line_immutable ON accounting_entryline;",
    "DROP FUNCTION IF EXISTS facturo_ledger_line_immutable();",
]


# --- migration 0003: the entry insert advances the chain head itself -------------------------
# The entry must continue the organization's chain (number = last + 1, previous hash = the
# head); inserting it moves the head, so a posting needs no separate UPDATE (one round trip
# less per invoice issued) and no code path can post out of order.

_GENESIS = "0" * 64
_CHAIN_OK = f"""EXISTS (SELECT 1 FROM accounting_ledgerstate s
    WHERE s.organization_id = NEW.organization_id AND s.last_number + 1 = NEW.number
    AND (CASE WHEN s.last_hash = '' THEN '{_GENESIS}' ELSE s.last_hash END) = NEW.previous_hash)"""  # noqa: S608

SQLITE_CHAIN = [
    f"""CREATE TRIGGER ledger_entry_chain BEFORE INSERT ON accounting_entry
    FOR EACH ROW WHEN NOT {_CHAIN_OK}
    BEGIN SELECT RAISE(ABORT, 'ledger.chain: an entry must continue the chain'); END;""",
    """CREATE TRIGGER ledger_entry_advance AFTER INSERT ON accounting_entry
    FOR EACH ROW BEGIN
      UPDATE accounting_ledgerstate SET last_number = NEW.number, last_hash = NEW.hash
      WHERE organization_id = NEW.organization_id;
    END;""",
]
SQLITE_CHAIN_REVERSE = [
    "DROP TRIGGER IF EXISTS ledger_entry_chain;",
    "DROP TRIGGER IF EXISTS ledger_entry_advance;",
]
PG_CHAIN = [
    f"""CREATE FUNCTION facturo_ledger_entry_chain() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'INSERT' AND NOT {_CHAIN_OK} THEN
        RAISE EXCEPTION 'ledger.chain: an entry must continue the chain';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER ledger_entry_chain BEFORE INSERT ON accounting_entry
    FOR EACH ROW EXECUTE FUNCTION facturo_ledger_entry_chain();""",
    """CREATE FUNCTION facturo_ledger_entry_advance() RETURNS trigger AS $$
    BEGIN
      UPDATE accounting_ledgerstate SET last_number = NEW.number, last_hash = NEW.hash
      WHERE organization_id = NEW.organization_id;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER ledger_entry_advance AFTER INSERT ON accounting_entry
    FOR EACH ROW EXECUTE FUNCTION facturo_ledger_entry_advance();""",
]
PG_CHAIN_REVERSE = [
    "DROP TRIGGER IF EXISTS ledger_entry_chain ON accounting_entry;",
    "DROP FUNCTION IF EXISTS facturo_ledger_entry_chain();",
    "DROP TRIGGER IF EXISTS ledger_entry_advance ON accounting_entry;",
    "DROP FUNCTION IF EXISTS facturo_ledger_entry_advance();",
]
