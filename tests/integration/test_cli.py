"""The `facturo` command: demo data, accountant's export, users and API tokens."""

from __future__ import annotations

from pathlib import Path

from django.test import Client
from pypdf import PdfReader
from typer.testing import CliRunner

from facturo.cli import app
from facturo.demo import DEMO_EMAIL
from facturo.invoicing.models import Invoice, Status
from facturo.organizations.models import Organization

runner = CliRunner()


def test_demo_then_export_then_check(engine: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert DEMO_EMAIL in result.output
    org = Organization.objects.get(memberships__user__email=DEMO_EMAIL)
    issued = Invoice.objects.filter(organization=org).exclude(status=Status.DRAFT)
    drafts = Invoice.objects.filter(organization=org, status=Status.DRAFT)
    assert issued.filter(kind="credit_note").count() == 1
    assert issued.filter(kind="deposit").count() == 1
    assert drafts.count() >= 2
    # Loading twice changes nothing.
    again = runner.invoke(app, ["demo", "--no-serve"])
    assert again.exit_code == 0
    assert "already there" in again.output
    assert Invoice.objects.filter(organization=org).count() == issued.count() + drafts.count()

    out = tmp_path / "archive"
    result = runner.invoke(app, ["export", "documents", "--out", str(out), "--organization",
                                 str(org.pk)])  # fmt: skip
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{n}.pdf" for n in issued.values_list("number", flat=True))
    for path in out.iterdir():
        assert "factur-x.xml" in PdfReader(path).attachments

    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output


def test_createuser_and_api_token(engine: str) -> None:
    result = runner.invoke(
        app,
        ["createuser", "marie@example.com", "--organization", "Studio Marie"],
        input="Un-mot-de-passe-solide-42\nUn-mot-de-passe-solide-42\n",
    )
    assert result.exit_code == 0, result.output
    weak = runner.invoke(app, ["createuser", "weak@example.com"], input="1234\n1234\n")
    assert weak.exit_code == 2
    result = runner.invoke(app, ["token", "create", "--email", "marie@example.com"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("fct_")
    response = Client().get("/api/v1/customers", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["count"] == 0
    unknown = runner.invoke(app, ["token", "create", "--email", "nobody@example.com"])
    assert unknown.exit_code == 2
