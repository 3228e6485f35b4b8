"""The ``facturo`` command: run, operate and verify an installation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from facturo.organizations.models import Organization

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

app = typer.Typer(help="facturo — invoicing for French and EU businesses.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
export_app = typer.Typer(help="Exports.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(export_app, name="export")
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facturo.web.settings")
    import django

    django.setup()


def _migrate(verbosity: int = 0) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


def _pick_organization(email: str | None, organization: str | None) -> Organization:
    from facturo.organizations.models import Membership, Organization

    if organization:
        org = (
            Organization.objects.filter(pk=organization).first()
            or Organization.objects.filter(name=organization).first()
        )
        if org is None:
            err.print(f"[red]No organization “{organization}”.[/red]")
            raise typer.Exit(2)
        return org
    if email:
        memberships = list(
            Membership.objects.filter(user__email__iexact=email).select_related("organization")
        )
        if len(memberships) == 1:
            return memberships[0].organization
        if not memberships:
            err.print(f"[red]{email} belongs to no organization.[/red]")
            raise typer.Exit(2)
        names = ", ".join(f"{m.organization.name} ({m.organization.pk})" for m in memberships)
        err.print(
            f"[red]{email} belongs to several organizations; add --organization: {names}[/red]"
        )
        raise typer.Exit(2)
    orgs = list(Organization.objects.all()[:2])
    if len(orgs) == 1:
        return orgs[0]
    err.print("[red]Several (or no) organizations: name one with --organization.[/red]")
    raise typer.Exit(2)


@app.command()
def migrate() -> None:
    """Create or update the database schema."""
    _setup()
    _migrate(verbosity=1)


def _start_worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "facturo.cli", "worker"])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    embedded_worker: Annotated[bool, typer.Option(help="Run the background worker too.")] = True,
    threads: Annotated[int, typer.Option(help="Web threads.")] = 8,
) -> None:
    """Run the web application (and, by default, the background worker) in one command."""
    _setup()
    _migrate()
    from waitress import serve as waitress_serve

    from facturo.web.wsgi import application

    worker = _start_worker() if embedded_worker else None
    console.print(f"facturo is running on [bold]http://{host}:{port}/[/bold] (Ctrl+C to stop)")
    try:
        waitress_serve(application, host=host, port=port, threads=threads, ident="facturo")
    finally:
        if worker and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()


@app.command()
def worker(
    workers: Annotated[int, typer.Option(help="Worker threads.")] = 2,
) -> None:
    """Run background jobs (e-mail delivery, periodic tasks). Start one per machine or more."""
    _setup()
    from django.core.management import call_command

    call_command("run_huey", workers=workers, worker_type="thread")


@app.command()
def demo(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Only load the data.")] = False,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Create the database, load a realistic demo company and start facturo."""
    _setup()
    from django.conf import settings

    _migrate()
    from facturo.demo import DEMO_EMAIL, DEMO_PASSWORD, load_demo

    with console.status("Loading the demo company…"):
        org, created = load_demo()
    console.print(
        ("Demo company created: " if created else "Demo company already there: ")
        + f"[bold]{org.name}[/bold]  (data in {settings.DATA_DIR})"
    )
    console.print(f"Log in as [bold]{DEMO_EMAIL}[/bold] with password [bold]{DEMO_PASSWORD}[/bold]")
    if not no_serve:
        serve(host=host, port=port, embedded_worker=True, threads=8)


@app.command()
def createuser(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    organization: Annotated[
        str | None, typer.Option(help="Create this company, owned by the user.")
    ] = None,
    superuser: bool = False,
) -> None:
    """Create a user (optionally with a new organization they own)."""
    _setup()
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from facturo.accounts.models import User

    if User.objects.filter(email__iexact=email).exists():
        err.print(f"[red]A user {email} already exists.[/red]")
        raise typer.Exit(2)
    try:
        validate_password(password)
    except ValidationError as exc:
        err.print("[red]" + " ".join(exc.messages) + "[/red]")
        raise typer.Exit(2) from None
    if superuser:
        user = User.objects.create_superuser(email, password)
    else:
        user = User.objects.create_user(email, password)
    console.print(f"User {user.email} created.")
    if organization:
        from facturo.organizations.services import create_organization

        org = create_organization(
            user,
            name=organization,
            legal_name=organization,
            address_line1="—",
            postcode="00000",
            city="—",
        )
        console.print(
            f"Organization “{org.name}” created ({org.pk}); complete its identity in "
            "the settings before issuing."
        )


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="The user the token acts as.")],
    organization: Annotated[str | None, typer.Option(help="Organization id or name.")] = None,
    name: str = "cli",
) -> None:
    """Print a new API token (shown once)."""
    _setup()
    from facturo.organizations.models import Membership
    from facturo.organizations.services import create_api_token

    org = _pick_organization(email, organization)
    membership = Membership.objects.filter(user__email__iexact=email, organization=org).first()
    if membership is None:
        err.print(f"[red]{email} is not a member of {org.name}.[/red]")
        raise typer.Exit(2)
    print(create_api_token(membership, name))


@export_app.command("documents")
def export_documents(
    out: Annotated[Path, typer.Option(help="Folder to write <number>.pdf files into.")],
    organization: Annotated[str | None, typer.Option(help="Organization id or name.")] = None,
) -> None:
    """Write every issued invoice and credit note as <number>.pdf (Factur-X embedded)."""
    _setup()
    from facturo.documents.models import StoredDocument
    from facturo.documents.services import PDF

    org = _pick_organization(None, organization)
    out.mkdir(parents=True, exist_ok=True)
    docs = StoredDocument.objects.filter(organization_id=org.id, content_type=PDF).order_by(
        "filename"
    )
    total = docs.count()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("Exporting", total=total)
        for doc in docs.iterator(chunk_size=50):
            (out / doc.filename).write_bytes(bytes(doc.content))
            progress.advance(task)
    console.print(f"{total} documents written to {out}")


@app.command()
def check(
    organization: Annotated[str | None, typer.Option(help="Only this organization.")] = None,
) -> None:
    """Verify numbering (no gap, no duplicate, date order), every hash chain (documents,
    audit, ledger entries) and the signed year-end closings."""
    _setup()
    from facturo.accounting.integrity import verify_ledger
    from facturo.invoicing.integrity import verify_organization
    from facturo.organizations.models import Organization

    orgs = (
        [_pick_organization(None, organization)]
        if organization
        else list(Organization.objects.order_by("created_at"))
    )
    problems: list[object] = []
    for org in orgs:
        found: list[object] = [*verify_organization(org), *verify_ledger(org)]
        problems.extend(found)
        status = "[green]OK[/green]" if not found else f"[red]{len(found)} problem(s)[/red]"
        console.print(f"{org.name}: {status}")
    if problems:
        for problem in problems:
            err.print(f"[red]BROKEN[/red] {problem}")
        raise typer.Exit(1)
    console.print(f"All {len(orgs)} organization(s) verified.")


accounting_app = typer.Typer(help="Accounting: FEC export and check.", no_args_is_help=True)
app.add_typer(accounting_app, name="accounting")


@accounting_app.command("export-fec")
def accounting_export_fec(
    year: Annotated[int, typer.Option("--year", help="Calendar year the fiscal year ends in.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the FEC file into.")],
    organization: Annotated[str | None, typer.Option(help="Organization id or name.")] = None,
    utf8: Annotated[bool, typer.Option("--utf8", help="UTF-8 instead of ISO-8859-15.")] = False,
    pipe: Annotated[bool, typer.Option("--pipe", help="Separate fields with | (not tab).")] = False,
) -> None:
    """Write the FEC (art. A47 A-1 LPF) of a fiscal year as <SIREN>FEC<AAAAMMJJ>.txt."""
    _setup()
    from facturo.accounting import exports
    from facturo.audit.services import SYSTEM
    from facturo.core.errors import BusinessError
    from facturo.formats.fec import check_fec
    from facturo.organizations.context import Ctx

    org = _pick_organization(None, organization)
    ctx = Ctx(org, "owner", SYSTEM)
    try:
        name, data = exports.fec(
            ctx, year, encoding="utf-8" if utf8 else "iso-8859-15", separator="|" if pipe else "\t"
        )
    except BusinessError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)
    fiscal = exports.fiscal_year_for(ctx, year)
    report = check_fec(data, fiscal_year_start=fiscal.start, fiscal_year_end=fiscal.end)
    lines = data.count(b"\n") - 1
    state = "checked OK" if report.ok else f"[red]{len(report.errors)} error(s)[/red]"
    console.print(f"{out / name}: {lines} lines, {state}")
    if not report.ok:
        raise typer.Exit(1)


@accounting_app.command("check-fec")
def accounting_check_fec(
    file: Annotated[Path, typer.Argument(help="The FEC file to check.")],
    start: Annotated[str | None, typer.Option(help="Fiscal year start YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Fiscal year end YYYY-MM-DD.")] = None,
) -> None:
    """Check a FEC file (structure, balance, sequence, dates); errors by line, exit 1."""
    import datetime as dt
    import re

    from facturo.formats.fec import check_fec

    data = file.read_bytes()
    if end is None:
        found = re.search(r"FEC(\d{8})", file.name)
        if not found:
            err.print("[red]Give --end (the file name has no FEC<AAAAMMJJ> closing date).[/red]")
            raise typer.Exit(2)
        digits = found.group(1)
        end_day = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    else:
        end_day = dt.date.fromisoformat(end)
    start_day = (
        dt.date.fromisoformat(start)
        if start
        else (end_day.replace(year=end_day.year - 1) + dt.timedelta(days=1))
    )
    report = check_fec(data, fiscal_year_start=start_day, fiscal_year_end=end_day)
    for issue in report.errors:
        where = f"line {issue.line}" if issue.line else "file"
        err.print(f"[red]ERROR[/red] {where}: {issue.code}: {issue.message}")
    for issue in report.warnings:
        where = f"line {issue.line}" if issue.line else "file"
        err.print(f"[yellow]WARNING[/yellow] {where}: {issue.code}: {issue.message}")
    summary = f"{file.name}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    if not report.ok:
        console.print(f"[red]{summary}[/red]")
        raise typer.Exit(1)
    console.print(f"[green]{summary}[/green]")


billing_app = typer.Typer(help="Subscriptions billing.", no_args_is_help=True)
app.add_typer(billing_app, name="billing")


@billing_app.command("run")
def billing_run(
    date: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: today).")] = None,
    organization: Annotated[str | None, typer.Option(help="Name or id.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be billed.")] = False,
) -> None:
    """Bill every due subscription period (safe to re-run, or to run on several machines)."""
    import datetime as dt

    _setup()
    from django.utils import timezone

    from facturo.subscriptions import billing

    org = _pick_organization(None, organization) if organization else None
    org_id = org.pk if org else None
    # without --date: the organization's own date (time zone), else the server's
    day = (
        dt.date.fromisoformat(date)
        if date
        else billing.run_ctx(org).today()
        if org
        else timezone.localdate()
    )
    if dry_run:
        limit = timezone.localdate() + billing.PREVIEW_HORIZON
        if day > limit:
            err.print(f"[red]A preview looks at most a year ahead (up to {limit}).[/red]")
            raise typer.Exit(2)
        summary = billing.preview(day, org_id)
        for o in summary.outcomes:
            late = " (catch-up)" if o.caught_up else ""
            console.print(f"{o.subscription_id} {o.period_start} → {o.period_end} {o.total}{late}")
        console.print(f"dry run: would bill {summary.planned}, catch-up {summary.caught_up}")
        return
    due = billing.count_due(day, org_id)
    with Progress(
        TextColumn("Billing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("billing", total=due)
        summary = billing.run_billing(
            day,
            org_id,
            keep_outcomes=False,
            on_progress=lambda o: progress.update(task, advance=1, total=max(due, 1)),
        )
    for o in summary.outcomes:
        err.print(f"[red]failed[/red] {o.subscription_id} {o.period_start}: {o.error}")
    if summary.caught_up:
        console.print(f"caught up {summary.caught_up} period(s) due before {day}")
    console.print(summary.line())


bank_app = typer.Typer(help="Bank statements and reconciliation.", no_args_is_help=True)
app.add_typer(bank_app, name="bank")


@bank_app.command("import")
def bank_import(
    file: Annotated[Path, typer.Argument(help="CAMT.053/054, OFX, MT940 or CSV file.")],
    account: Annotated[
        str | None, typer.Option("--account", help="IBAN of the bank account (else the file's).")
    ] = None,
    organization: Annotated[str | None, typer.Option(help="Organization id or name.")] = None,
    import_valid_lines: Annotated[
        bool, typer.Option("--import-valid-lines", help="Keep the good rows of a bad file.")
    ] = False,
    match: Annotated[bool, typer.Option(help="Match the new lines with open invoices.")] = True,
) -> None:
    """Import a bank statement (idempotent) and reconcile its lines; ends with
    ``new N, duplicate N, rejected N, matched N``."""
    _setup()
    from facturo.audit.services import Actor
    from facturo.banking import services as banking
    from facturo.core.errors import BusinessError
    from facturo.organizations.context import Ctx

    org = _pick_organization(None, organization)
    ctx = Ctx(org, "owner", Actor(label="cli"))
    try:
        data = file.read_bytes()
    except OSError as exc:
        err.print(f"[red]{file}: {exc.strerror}[/red]")
        raise typer.Exit(2) from None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("Importing", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            result = banking.import_statement(
                ctx,
                data,
                file.name,
                iban=account or "",
                import_valid_lines=import_valid_lines,
                auto_match=False,
                source="cli",
                progress=advance,
            )
            if match and result.line_ids:
                progress.update(task, description="Matching", completed=0, total=None)
                run = banking.run_matching(ctx, line_ids=result.line_ids, progress=advance)
                result.matched, result.suggested = run.confirmed, run.suggested
        except BusinessError as exc:
            err.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from None
    for row in result.rejected:
        err.print(f"[yellow]rejected[/yellow] {row.position}: {row.reason}")
    if result.suggested:
        console.print(f"{result.suggested} line(s) wait for review")
    console.print(result.summary())


sepa_app = typer.Typer(help="SEPA direct debit.", no_args_is_help=True)
app.add_typer(sepa_app, name="sepa")


@sepa_app.command("import-returns")
def sepa_import_returns(
    file: Annotated[Path, typer.Argument(help="pain.002 status report or camt.054 file.")],
    organization: Annotated[str | None, typer.Option(help="Organization id or name.")] = None,
) -> None:
    """Return the debits a bank rejected or reversed (the invoices reopen, with the reason);
    safe to run twice. Ends with ``returned N, already returned N, unknown N, mismatch N``."""
    _setup()
    from facturo.audit.services import Actor
    from facturo.core.errors import BusinessError
    from facturo.organizations.context import Ctx
    from facturo.payments import sepa

    org = _pick_organization(None, organization)
    ctx = Ctx(org, "owner", Actor(label="cli"))
    try:
        data = file.read_bytes()
    except OSError as exc:
        err.print(f"[red]{file}: {exc.strerror}[/red]")
        raise typer.Exit(2) from None
    try:
        report = sepa.import_returns(ctx, data, filename=file.name)
    except BusinessError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    for row in report:
        numbers = ", ".join(n or "" for n in row.invoices)
        console.print(f"{row.outcome:<17} {row.end_to_end_id:<35} {row.reason_code} "
                      f"{row.reason} {numbers}".rstrip())  # fmt: skip
    count = {k: sum(1 for r in report if r.outcome == k)
             for k in ("returned", "already_returned", "unknown", "amount_mismatch")}  # fmt: skip
    console.print(f"returned {count['returned']}, already returned {count['already_returned']}, "
                  f"unknown {count['unknown']}, mismatch {count['amount_mismatch']}")  # fmt: skip


dunning_app = typer.Typer(help="Payment reminders (dunning).", no_args_is_help=True)
app.add_typer(dunning_app, name="dunning")


@dunning_app.command("run")
def dunning_run(
    date: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD (default: today, per time zone).")
    ] = None,
    organization: Annotated[str | None, typer.Option(help="Name or id.")] = None,
) -> None:
    """Queue the reminders due (safe to re-run, or to run on several machines); ends with
    ``queued N, skipped N``, each skipped invoice listed with its reason."""
    import datetime as dt

    _setup()
    from facturo.dunning import run as dunning

    try:
        day = dt.date.fromisoformat(date) if date else None
    except ValueError:
        err.print(f"[red]--date: “{date}” is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    org_id = _pick_organization(None, organization).pk if organization else None
    planned = dunning.count_planned(day, org_id)
    with Progress(
        TextColumn("Dunning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("dunning", total=planned)
        summary = dunning.run_dunning(
            day, org_id, on_progress=lambda n: progress.update(task, advance=n)
        )
    for s in summary.skipped:
        console.print(f"skipped {s.number}: {s.reason}")
    console.print(summary.line())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
