"""Where a notice, an email or a notification sends a person: the app's paths, built in one place.

Services do not import Flask, so these are plain strings; tests/web/test_links.py matches every one of
them against the app's routes, so renaming a route without changing it here fails the suite.
"""

from __future__ import annotations

import uuid
from datetime import date


def engagement(engagement_id: uuid.UUID) -> str:
    return f"/engagements/{engagement_id}"


def invoice_tasks(engagement_id: uuid.UUID) -> str:
    """Where a contractor's user invoices the approved tasks of a completion engagement (issue 20)."""
    return f"/engagements/{engagement_id}/invoice-tasks"


def milestone(milestone_id: uuid.UUID) -> str:
    return f"/milestones/{milestone_id}"


def invoice(invoice_id: uuid.UUID) -> str:
    return f"/invoices/{invoice_id}"


def batch(batch_id: uuid.UUID) -> str:
    return f"/batches/{batch_id}"


def project(project_id: uuid.UUID) -> str:
    """A project as its owner and the organization's staff see it: its proposals side by side, the award."""
    return f"/projects/{project_id}"


def proposal_project(project_id: uuid.UUID) -> str:
    """A project as a contractor sees it: the call for proposals, and its own proposal on it."""
    return f"/proposals/project/{project_id}"


def payments_due_before(day: date) -> str:
    """The payment queue filtered to what is due by ``day``."""
    return f"/payments/?due_before={day.isoformat()}"


def payments_on_hold() -> str:
    """The payment queue's invoices on hold (a payment rail refused or reversed them)."""
    return "/payments/?status=on_hold"


def approvals() -> str:
    return "/approvals/"


def reconciliation() -> str:
    """The latest reconciliation of Stripe's transfers with the payments recorded here, and its findings."""
    return "/payments/reconciliation"


def remittance_advice(run_id: uuid.UUID, contractor_id: uuid.UUID) -> str:
    """What a payment run paid a contractor, as a PDF (or, until the worker has issued it, a page saying so)."""
    return f"/documents/remittance-advice/{run_id}/{contractor_id}"


def self_billing_agreement() -> str:
    """A contractor's self-billing agreement with the organization, to read and confirm (issue 21)."""
    return "/self-billing/agreement"


def my_payments() -> str:
    """A contractor's payments page, where its payout account is too."""
    return "/invoices/"


def audit_trail() -> str:
    return "/audit/"


def notification_settings() -> str:
    """The person's in-app notifications (an email's footer and the daily digest link here)."""
    return "/notifications/"


def preferences() -> str:
    """The person's own preferences: time zone, each email or a daily digest (web/account.py)."""
    return "/account/preferences"


def invite(token: str) -> str:
    return f"/invite/{token}"


def password_reset(token: str) -> str:
    return f"/password/reset/{token}"
