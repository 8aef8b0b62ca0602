"""Self-billing in tests (issue 21, item 4): agreements recorded and confirmed, and answers given, through the real
services as the people who would; self-billed invoices issued for approved work, at a moment of the test's choosing;
and their rows read as the owner role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text

from backoffice.services import self_billing
from kit.engagements import owner_query, sign_in
from kit.money import approved_invoices, party

TERMS = (
    "The organization issues the invoices for the contractor's work on its behalf (self-billing).\n"
    "The contractor accepts or rejects each one; silence counts as acceptance."
)

# The self-billed invoice of an invoice, as the worker files it (services/receipts.issue_receipt) but dated
# ``now() - :ago``: a test does not wait weeks for silence to become acceptance. The owner role writes it (documents
# are the worker's to write, append-only, and nobody backdates one otherwise).
_FILE = text(
    """
    insert into documents (org_id, kind, invoice_id, transaction_id, title, filename, content, size_bytes, sha256,
                           contractor_id, engagement_id, issued_at)
    select i.org_id, 'self_billed_invoice', i.id, 'TX-' || upper(substr(md5(i.id::text), 1, 20)),
           'Self-billed invoice ' || i.invoice_number, 'self-billed-invoice-' || i.invoice_number || '.pdf',
           '%PDF-1.4'::bytea, 8, encode(sha256('%PDF-1.4'::bytea), 'hex'), i.contractor_id, i.engagement_id,
           now() - cast(:ago as interval)
      from invoices i
     where i.id = :invoice
    returning issued_at
    """
)


def file_self_billed(admin_engine, invoice_id, *, ago: timedelta = timedelta(0)):
    """Issue the invoice's self-billed invoice ``ago`` before the database's now; its issued_at."""
    with admin_engine.begin() as conn:
        return conn.execute(_FILE, {"invoice": invoice_id, "ago": ago}).scalar_one()


def issued_invoices(act_as, admin_engine, world, amounts=("1,000.00",), *, which="x", ago=timedelta(0)) -> list[dict]:
    """Contractor X's (or Y's) approved invoices of a new engagement, each with its self-billed invoice issued."""
    _, invoices = approved_invoices(act_as, admin_engine, party(world, which), amounts)
    for invoice in invoices:
        file_self_billed(admin_engine, invoice["id"], ago=ago)
    return invoices


@dataclass(frozen=True)
class Recorded:
    id: uuid.UUID
    agreed_on: date


def record(act_as, world, *, contractor_id=None, agreed_on="2026-01-15", terms=TERMS, by=None) -> Recorded:
    """Record an agreement as an admin of org A (or ``by``); its id and date, read while the admin still acts (the
    shared session then acts as others, who may not see it)."""
    session, actor = sign_in(act_as, by or world.admin, world.org_a)
    agreement = self_billing.record_agreement(session, actor, contractor_id or world.contractor_x, agreed_on, terms)
    return Recorded(agreement.id, agreement.agreed_on)


def confirm(act_as, person, org_id, agreement_id, *, agreed=True):
    session, actor = sign_in(act_as, person, org_id)
    return self_billing.confirm_agreement(session, actor, agreement_id, agreed=agreed)


def answer(act_as, person, org_id, invoice_id, decision: str, reason: str = ""):
    session, actor = sign_in(act_as, person, org_id)
    return self_billing.answer_invoice(session, actor, invoice_id, decision, reason)


def agreements(admin_engine, org_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from self_billing_agreements where org_id = :o order by recorded_at, id", o=org_id
    )


def answers(admin_engine, invoice_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from invoice_acceptances where invoice_id = :i order by decided_at, id", i=invoice_id
    )


def emails(admin_engine, org_id, event: str) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from email_messages where org_id = :o and event = :e order by recipient",
        o=org_id,
        e=event,
    )
