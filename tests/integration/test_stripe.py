"""Stripe: the real SDK against a local server speaking Stripe's wire format, and webhooks
signed the way Stripe signs them (t=…,v1=HMAC-SHA256(secret, "t.payload"))."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import stripe
import time_machine
from django.test import Client

from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.payments import online
from facturo.payments import services as payments
from facturo.payments.models import CheckoutLink, Payment, ProviderEvent
from tests.factories import make_customer, make_org

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
SECRET = "whsec_test_current"


class FakeStripe(BaseHTTPRequestHandler):
    sessions: dict[str, dict[str, Any]] = {}
    requests: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Request-Id", "req_fake")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != "Bearer sk_test_fake":
            self._reply(
                401,
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
            )
            return False
        return True

    def do_GET(self) -> None:
        if self._authorised() and self.path.startswith("/v1/balance"):
            self._reply(
                200, {"object": "balance", "available": [], "pending": [], "livemode": False}
            )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        key = self.headers.get("Idempotency-Key", "")
        FakeStripe.requests.append({"path": self.path, "form": form, "key": key})
        if not self._authorised():
            return
        if self.path.startswith("/v1/checkout/sessions/") and self.path.endswith("/expire"):
            sid = self.path.split("/")[4]
            session = next((s for s in FakeStripe.sessions.values() if s["id"] == sid), None)
            if session is None or session.get("status") in ("expired", "complete"):
                self._reply(
                    400,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": "Only open sessions can be expired.",
                        }
                    },
                )
                return
            session["status"] = "expired"
            self._reply(200, session)
            return
        if self.path != "/v1/checkout/sessions":
            self._reply(404, {"error": {"type": "invalid_request_error", "message": "no"}})
            return
        if key not in FakeStripe.sessions:
            sid = f"cs_test_{len(FakeStripe.sessions) + 1}"
            FakeStripe.sessions[key] = {
                "id": sid,
                "object": "checkout.session",
                "mode": "payment",
                "url": f"https://checkout.example/c/pay/{sid}",
                "amount_total": int(form["line_items[0][price_data][unit_amount]"][0]),
                "currency": form["line_items[0][price_data][currency]"][0],
                "metadata": {"invoice_id": form["metadata[invoice_id]"][0]},
                "expires_at": int(time.time()) + 86400,
                "payment_status": "unpaid",
                "status": "open",
            }
        self._reply(200, FakeStripe.sessions[key])


@pytest.fixture
def fake_stripe(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeStripe]]:
    FakeStripe.sessions, FakeStripe.requests = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(stripe, "api_base", f"http://127.0.0.1:{server.server_address[1]}")
    yield FakeStripe
    server.shutdown()
    server.server_close()


def sign(payload: bytes, secret: str, at: dt.datetime, *extra_secrets: str) -> str:
    t = int(at.timestamp())
    sigs = [
        hmac.new(s.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        for s in (secret, *extra_secrets)
    ]
    return ",".join([f"t={t}", *(f"v1={s}" for s in sigs)])


def paid_event(
    invoice: Invoice,
    event_id: str = "evt_1",
    pi: str = "pi_1",
    amount: int | None = None,
    kind: str = "checkout.session.completed",
) -> bytes:
    total = amount if amount is not None else int((invoice.total_incl_vat or 0) * 100)
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": int(NOW.timestamp()),
            "data": {
                "object": {
                    "id": "cs_test_1",
                    "object": "checkout.session",
                    "payment_status": "paid",
                    "amount_total": total,
                    "currency": invoice.currency.lower(),
                    "payment_intent": pi,
                    "payment_method_types": ["card"],
                    "metadata": {"invoice_id": str(invoice.pk)},
                    "customer_details": {"name": "Boulangerie Martin", "email": "x@example.com"},
                }
            },
        }
    ).encode()


@pytest.fixture
def setup(engine: str) -> tuple[Any, Invoice, str]:
    _, ctx = make_org()
    customer = make_customer(ctx)
    draft = invoicing.create_draft(
        ctx,
        customer.id,
        [
            {
                "description": "Site",
                "quantity": Decimal(1),
                "unit_price": Decimal("100.00"),
                "vat_rate": Decimal(20),
                "vat_category": "S",
            }
        ],
    )
    invoice = invoicing.issue_invoice(ctx, draft.id, render=False)
    row = online.configure(ctx, "stripe", secret_key="sk_test_fake", webhook_secret=SECRET)
    return ctx, invoice, f"/webhooks/stripe/{row.webhook_token}/"


def post(url: str, payload: bytes, header: str | None) -> Any:
    headers = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return Client().post(url, payload, content_type="application/json", **headers)


def test_checkout_session_is_created_once_with_our_idempotency_key(
    setup: tuple[Any, Invoice, str], fake_stripe: type[FakeStripe]
) -> None:
    ctx, invoice, _ = setup
    urls = {
        online.checkout_url(invoice, success_url="https://x/ok", cancel_url="https://x/no")
        for _ in range(3)
    }
    assert urls == {"https://checkout.example/c/pay/cs_test_1"}
    link = CheckoutLink.objects.get()
    assert fake_stripe.requests[0]["key"] == f"facturo-checkout-{link.pk}"
    assert fake_stripe.requests[0]["form"]["line_items[0][price_data][unit_amount]"] == ["12000"]
    assert len(fake_stripe.requests) == 1  # reused afterwards
    online.test_connection(ctx, "stripe")


def test_retry_after_lost_response_reuses_the_session(
    setup: tuple[Any, Invoice, str], fake_stripe: type[FakeStripe]
) -> None:
    _, invoice, _ = setup
    online.checkout_url(invoice, success_url="https://x/ok", cancel_url="https://x/no")
    CheckoutLink.objects.update(url="", external_id="")  # as if we crashed before saving
    online.checkout_url(invoice, success_url="https://x/ok", cancel_url="https://x/no")
    keys = {r["key"] for r in fake_stripe.requests}
    assert len(fake_stripe.requests) == 2
    assert len(keys) == 1
    assert len(fake_stripe.sessions) == 1


@time_machine.travel(NOW, tick=False)
def test_valid_webhook_records_and_allocates(setup: tuple[Any, Invoice, str]) -> None:
    _, invoice, url = setup
    payload = paid_event(invoice)
    response = post(url, payload, sign(payload, SECRET, NOW))
    assert response.status_code == 200, response.content
    payment = Payment.objects.get()
    assert (payment.amount, payment.method, payment.provider_reference) == (
        Decimal("120.00"),
        "card",
        "pi_1",
    )
    assert Invoice.objects.get(pk=invoice.pk).status == Status.PAID


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "case",
    ["tampered", "wrong_secret", "missing", "malformed", "no_v1", "too_old", "future"],
)
def test_webhook_rejected_before_parsing(setup: tuple[Any, Invoice, str], case: str) -> None:
    _, invoice, url = setup
    payload = paid_event(invoice)
    header: str | None = sign(payload, SECRET, NOW)
    body = payload
    if case == "tampered":
        body = payload.replace(b'"amount_total": 12000', b'"amount_total": 99')
        assert body != payload
    elif case == "wrong_secret":
        header = sign(payload, "whsec_other", NOW)
    elif case == "missing":
        header = None
    elif case == "malformed":
        header = "garbage"
    elif case == "no_v1":
        header = f"t={int(NOW.timestamp())}"
    elif case == "too_old":
        header = sign(payload, SECRET, NOW - dt.timedelta(seconds=301))
    elif case == "future":
        header = sign(payload, SECRET, NOW + dt.timedelta(seconds=301))
    response = post(url, body, header)
    assert response.status_code == 400
    assert not Payment.objects.exists()
    assert not ProviderEvent.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == Status.ISSUED


@time_machine.travel(NOW, tick=False)
def test_secret_rotation(setup: tuple[Any, Invoice, str]) -> None:
    ctx, invoice, url = setup
    # Stripe signs with the old and the new secret while it rolls over: two v1 entries.
    online.configure(ctx, "stripe", secret_key="sk_test_fake", webhook_secret="whsec_new")
    both = paid_event(invoice, "evt_both", "pi_1", amount=5000)
    assert post(url, both, sign(both, "whsec_unknown", NOW, "whsec_new")).status_code == 200
    # A delivery still signed only with the previous secret is accepted too.
    old = paid_event(invoice, "evt_old", "pi_2", amount=7000)
    assert post(url, old, sign(old, SECRET, NOW)).status_code == 200
    assert Payment.objects.count() == 2
    assert Invoice.objects.get(pk=invoice.pk).status == Status.PAID


@time_machine.travel(NOW, tick=False)
def test_same_event_five_times_shuffled_with_others_gives_one_payment(
    setup: tuple[Any, Invoice, str],
) -> None:
    _, invoice, url = setup
    completed = paid_event(invoice, "evt_1", "pi_1")
    async_ok = paid_event(invoice, "evt_2", "pi_1", kind="checkout.session.async_payment_succeeded")
    other = json.dumps({"id": "evt_3", "type": "charge.updated", "data": {"object": {}}}).encode()
    deliveries = [completed] * 5 + [async_ok] * 2 + [other]
    random.Random(4).shuffle(deliveries)
    outcomes = [post(url, p, sign(p, SECRET, NOW)).content.decode() for p in deliveries]
    assert Payment.objects.count() == 1
    assert ProviderEvent.objects.count() == 3
    assert outcomes.count("duplicate") == 5
    assert payments.amount_due(Invoice.objects.get(pk=invoice.pk)) == Decimal(0)


@time_machine.travel(NOW, tick=False)
def test_unknown_endpoint_token_is_rejected(setup: tuple[Any, Invoice, str]) -> None:
    _, invoice, _ = setup
    payload = paid_event(invoice)
    assert post("/webhooks/stripe/nope/", payload, sign(payload, SECRET, NOW)).status_code == 400
    assert not Payment.objects.exists()


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("foreign_id", ["", "not-a-uuid", "01a2-zz"])
def test_sessions_made_outside_facturo_are_acknowledged_not_crashed_on(
    setup: tuple[Any, Invoice, str], foreign_id: str
) -> None:
    _, invoice, url = setup
    event = json.loads(paid_event(invoice))
    event["data"]["object"]["metadata"]["invoice_id"] = foreign_id
    payload = json.dumps(event).encode()
    response = post(url, payload, sign(payload, SECRET, NOW))
    assert response.status_code == 200, response.content
    assert not Payment.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == Status.ISSUED
