"""What self-billing's events tell whom (issue 21, item 4): an agreement recorded with a contractor (its users, to
read and confirm it), and a self-billed invoice the contractor rejected (the engagement's owner and finance, with the
contractor's reason). Builders like those of services/notification_events, registered there with @builds (which
imports this module last)."""

from __future__ import annotations

from sqlalchemy import select

from backoffice.errors import NotFound
from backoffice.models import Engagement, Invoice, InvoiceAcceptance, SelfBillingAgreement
from backoffice.services import links
from backoffice.services.notification_events import (
    Notice,
    _amount_facts,
    _engagement_facts,
    _user_name,
    builds,
    contractor_name,
    contractor_people,
    finance_people,
    person,
)


def _row(session, model, row_id):
    """The row the event names, as the organization's worker sees it (NotFound: nobody is told)."""
    row = session.execute(select(model).where(model.id == row_id)).scalar_one_or_none()
    if row is None:
        raise NotFound()
    return row


@builds("self_billing.agreement_recorded")
def _agreement_recorded(session, org, agreement_id, event):
    a = _row(session, SelfBillingAgreement, agreement_id)
    return [
        Notice(
            event,
            f"{event}:{a.id}",
            contractor_people(session, a.contractor_id),
            subject=f"{org.name} recorded a self-billing agreement with you: please confirm it",
            lead=f"{org.name} issues the invoices for your work on your behalf (self-billing). EU VAT rules want your "
            "prior agreement to that: read the terms and confirm them. Each self-billed invoice then comes to you to "
            "accept or reject.",
            facts=(
                ("Contractor", contractor_name(session, a.contractor_id)),
                ("Agreement dated", org.day(a.agreed_on)),
                ("Recorded by", _user_name(session, a.recorded_by)),
            ),
            path=links.self_billing_agreement(),
            action="Read and confirm the agreement",
            entity=("contractor", str(a.contractor_id)),
        )
    ]


@builds("self_billing.invoice_rejected")
def _invoice_rejected(session, org, answer_id, event):
    answer = _row(session, InvoiceAcceptance, answer_id)
    invoice = session.get(Invoice, answer.invoice_id)
    e = session.get(Engagement, invoice.engagement_id)
    contractor = contractor_name(session, invoice.contractor_id)
    owner = person(session, e.owner_user_id)
    told = {p.user_id for p in owner}
    people = owner + tuple(p for p in finance_people(session) if p.user_id not in told)
    return [
        Notice(
            event,
            f"{event}:{answer.id}",
            people,
            subject=f"{contractor} rejected self-billed invoice {invoice.invoice_number}",
            lead=f"{contractor} says the self-billed invoice {org.name} issued on its behalf for “{e.title}” is wrong. "
            "It is not paid while it stands rejected: sort it out with them; once they accept it, it can be paid.",
            facts=(
                *_engagement_facts(e),
                ("Contractor", contractor),
                *_amount_facts(org, invoice),
                ("Rejected by", _user_name(session, answer.decided_by)),
            ),
            quote=answer.reason,
            quote_label="The contractor's reason",
            path=links.invoice(invoice.id),
            action="Open the invoice",
            entity=("invoice", str(invoice.id)),
        )
    ]
