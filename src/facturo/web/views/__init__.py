"""The web UI: server-rendered pages, htmx for the live parts. Included under namespace "web"."""

from __future__ import annotations

from django.urls import path
from django.views.i18n import set_language

from . import (
    accounting,
    auth,
    banking,
    catalog,
    customers,
    dashboard,
    dunning,
    invoices,
    organization,
    payments,
    subscriptions,
)

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("language/", set_language, name="set_language"),
    path("organization/switch/", auth.switch, name="org_switch"),
    # customers
    path("customers/", customers.customer_list, name="customer_list"),
    path("customers/new/", customers.customer_create, name="customer_create"),
    path("customers/<uuid:pk>/", customers.customer_detail, name="customer_detail"),
    path("customers/<uuid:pk>/edit/", customers.customer_edit, name="customer_edit"),
    # catalog
    path("catalog/", catalog.product_list, name="product_list"),
    path("catalog/new/", catalog.product_create, name="product_create"),
    path("catalog/<uuid:pk>/edit/", catalog.product_edit, name="product_edit"),
    # invoices
    path("invoices/", invoices.invoice_list, name="invoice_list"),
    path("invoices/new/", invoices.invoice_create, name="invoice_create"),
    path("invoices/issue/", invoices.invoice_issue_many, name="invoice_issue_many"),
    path("invoices/new/totals/", invoices.invoice_totals_new, name="invoice_totals_new"),
    path("invoices/<uuid:pk>/", invoices.invoice_detail, name="invoice_detail"),
    path("invoices/<uuid:pk>/totals/", invoices.invoice_totals, name="invoice_totals"),
    path("invoices/<uuid:pk>/issue/", invoices.invoice_issue, name="invoice_issue"),
    path("invoices/<uuid:pk>/delete/", invoices.invoice_delete, name="invoice_delete"),
    path("invoices/<uuid:pk>/pdf/", invoices.invoice_pdf, name="invoice_pdf"),
    path("invoices/<uuid:pk>/send/", invoices.invoice_send, name="invoice_send"),
    path(
        "invoices/<uuid:pk>/revoke-links/",
        invoices.invoice_revoke_links,
        name="invoice_revoke_links",
    ),
    path("invoices/<uuid:pk>/credit-note/", invoices.invoice_credit, name="invoice_credit"),
    # subscriptions
    path("subscriptions/", subscriptions.subscription_list, name="subscription_list"),
    path("subscriptions/plans/", subscriptions.plan_list, name="plan_list"),
    path("subscriptions/plans/new/", subscriptions.plan_edit, name="plan_create"),
    path("subscriptions/plans/<uuid:pk>/edit/", subscriptions.plan_edit, name="plan_edit"),
    path("subscriptions/new/", subscriptions.subscription_create, name="subscription_create"),
    path(
        "subscriptions/<uuid:pk>/edit/",
        subscriptions.subscription_edit,
        name="subscription_edit",
    ),
    path(
        "subscriptions/<uuid:pk>/change/",
        subscriptions.subscription_change,
        name="subscription_change",
    ),
    path("subscriptions/runs/", subscriptions.billing_run_list, name="billing_run_list"),
    path("subscriptions/runs/start/", subscriptions.billing_run_start, name="billing_run_start"),
    path(
        "subscriptions/runs/<uuid:pk>/", subscriptions.billing_run_detail, name="billing_run_detail"
    ),
    path(
        "subscriptions/runs/<uuid:pk>/retry/",
        subscriptions.billing_run_retry,
        name="billing_run_retry",
    ),
    path("subscriptions/mrr/", subscriptions.mrr, name="mrr"),
    path("subscriptions/<uuid:pk>/", subscriptions.subscription_detail, name="subscription_detail"),
    path(
        "subscriptions/<uuid:pk>/pause/",
        subscriptions.subscription_pause,
        name="subscription_pause",
    ),
    path(
        "subscriptions/<uuid:pk>/resume/",
        subscriptions.subscription_resume,
        name="subscription_resume",
    ),
    path(
        "subscriptions/<uuid:pk>/cancel/",
        subscriptions.subscription_cancel,
        name="subscription_cancel",
    ),
    # bank
    path("bank/", banking.bank_home, name="bank_home"),
    path("bank/upload/", banking.bank_upload, name="bank_upload"),
    path("bank/accounts/<uuid:pk>/", banking.bank_account, name="bank_account"),
    path("bank/reconcile/", banking.bank_reconcile, name="bank_reconcile"),
    path("bank/reconcile/run/", banking.bank_match_run, name="bank_match_run"),
    path("bank/lines/<uuid:pk>/accept/", banking.bank_line_accept, name="bank_line_accept"),
    path("bank/lines/<uuid:pk>/confirm/", banking.bank_line_confirm, name="bank_line_confirm"),
    path("bank/lines/<uuid:pk>/expense/", banking.bank_line_expense, name="bank_line_expense"),
    path("bank/lines/<uuid:pk>/ignore/", banking.bank_line_ignore, name="bank_line_ignore"),
    path("bank/matches/<uuid:pk>/undo/", banking.bank_match_undo, name="bank_match_undo"),
    path("bank/rules/", banking.bank_rules, name="bank_rules"),
    path("bank/report/", banking.bank_report, name="bank_report"),
    # accounting
    path("accounting/", accounting.accounting_home, name="accounting_home"),
    path("accounting/fec/", accounting.accounting_fec, name="accounting_fec"),
    path(
        "accounting/journal-export/",
        accounting.accounting_journal_export,
        name="accounting_journal_export",
    ),
    path("accounting/entries/", accounting.accounting_entries, name="accounting_entries"),
    path("accounting/entries/new/", accounting.accounting_entry_new, name="accounting_entry_new"),
    path("accounting/entries/<uuid:pk>/", accounting.accounting_entry, name="accounting_entry"),
    path("accounting/chart/", accounting.accounting_chart, name="accounting_chart"),
    path("accounting/rules/", accounting.accounting_rules, name="accounting_rules"),
    path(
        "accounting/reports/<str:report>/", accounting.accounting_report, name="accounting_report"
    ),
    path("accounting/vat/", accounting.accounting_vat, name="accounting_vat"),
    # payments
    path("payments/", payments.payment_list, name="payment_list"),
    path("payments/new/", payments.payment_create, name="payment_create"),
    path("payments/<uuid:pk>/", payments.payment_detail, name="payment_detail"),
    path("payments/mandates/", payments.mandate_list, name="mandate_list"),
    path("payments/mandates/<uuid:pk>/", payments.mandate_detail, name="mandate_detail"),
    path("payments/sepa/", payments.batch_list, name="batch_list"),
    path("payments/sepa/<uuid:pk>/", payments.batch_detail, name="batch_detail"),
    path("payments/sepa/<uuid:pk>/file/", payments.batch_file, name="batch_file"),
    path("payments/settings/", payments.payment_settings, name="payment_settings"),
    # dunning (payment reminders)
    path("reminders/", dunning.dunning_home, name="dunning_home"),
    path("reminders/history/", dunning.dunning_history, name="dunning_history"),
    path("reminders/messages/<uuid:pk>/", dunning.dunning_message, name="dunning_message"),
    path(
        "reminders/messages/<uuid:pk>/pdf/",
        dunning.dunning_message_pdf,
        name="dunning_message_pdf",
    ),
    path("reminders/tasks/", dunning.dunning_tasks, name="dunning_tasks"),
    path("reminders/tasks/<uuid:pk>/done/", dunning.dunning_task_done, name="dunning_task_done"),
    path("reminders/pauses/", dunning.dunning_pause_customer, name="dunning_pause_customer"),
    path("reminders/pauses/<uuid:pk>/lift/", dunning.dunning_pause_lift, name="dunning_pause_lift"),
    path("reminders/policies/", dunning.dunning_policies, name="dunning_policies"),
    path("reminders/policies/new/", dunning.dunning_policy_edit, name="dunning_policy_new"),
    path("reminders/policies/<uuid:pk>/", dunning.dunning_policy_edit, name="dunning_policy_edit"),
    path("reminders/preview/", dunning.dunning_preview, name="dunning_preview"),
    path("reminders/invoices/<uuid:pk>/", dunning.dunning_invoice, name="dunning_invoice"),
    # organization
    path("settings/", organization.org_settings, name="org_settings"),
    path("settings/numbering-example/", organization.numbering_example, name="numbering_example"),
    path("settings/logo/", organization.org_logo, name="org_logo"),
    path("settings/members/", organization.members, name="members"),
    path("settings/members/<int:pk>/role/", organization.member_role, name="member_role"),
    path("settings/members/<int:pk>/remove/", organization.member_remove, name="member_remove"),
]

__all__ = ["urlpatterns"]
