"""Self-billing on the read side (issue 21, item 4): the agreement in force with a contractor, and where the
contractor's answer to each self-billed invoice stands.

The state is the database's (``invoice_acceptances_seen()`` in sql/self_billing.sql: the twin of
domain.self_billing.acceptance_state, judged by the database's clock, as the guards that refuse to pay judge it). It
answers for any member who sees the invoice: a project owner reads no document, yet learns when silence ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session, aliased

from backoffice.domain.self_billing import ACCEPTANCE_DAYS_RANGE, Acceptance
from backoffice.models import Contractor, InvoiceAcceptance, Organization, SelfBillingAgreement, User

# --- the agreement -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementView:
    id: uuid.UUID
    contractor_id: uuid.UUID
    contractor_name: str
    agreed_on: date
    terms: str
    recorded_by_name: str | None
    recorded_at: datetime
    confirmed_by_name: str | None
    confirmed_at: datetime | None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


def agreement_of(session: Session, contractor_id) -> AgreementView | None:
    """The agreement in force with the contractor (the latest recorded), as the caller may see it (finance and
    admins any, the contractor's user its own); None when there is none."""
    recorder, confirmer = aliased(User), aliased(User)
    row = session.execute(
        select(
            SelfBillingAgreement,
            Contractor.legal_name,
            recorder.name.label("recorded_by_name"),
            confirmer.name.label("confirmed_by_name"),
        )
        .join(Contractor, Contractor.id == SelfBillingAgreement.contractor_id)
        .outerjoin(recorder, recorder.id == SelfBillingAgreement.recorded_by)
        .outerjoin(confirmer, confirmer.id == SelfBillingAgreement.confirmed_by)
        .where(SelfBillingAgreement.contractor_id == contractor_id)
        .order_by(SelfBillingAgreement.recorded_at.desc(), SelfBillingAgreement.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    a = row.SelfBillingAgreement
    return AgreementView(
        a.id,
        a.contractor_id,
        row.legal_name,
        a.agreed_on,
        a.terms,
        row.recorded_by_name,
        a.recorded_at,
        row.confirmed_by_name,
        a.confirmed_at,
    )


@dataclass(frozen=True)
class AcceptanceTerms:
    days: int  # silence for this long after issue counts as acceptance
    required: bool  # nothing not accepted is paid


def acceptance_terms(session: Session, org_id) -> AcceptanceTerms:
    """The organization's settings for the contractor's answers (services/organizations sets them)."""
    row = session.execute(
        select(Organization.acceptance_days, Organization.acceptance_required).where(Organization.id == org_id)
    ).one()
    return AcceptanceTerms(row.acceptance_days, row.acceptance_required)


# --- the contractor's answers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    decision: str  # accepted | rejected
    reason: str | None
    decided_by_name: str | None
    decided_at: datetime


@dataclass(frozen=True)
class AcceptanceView:
    invoice_id: uuid.UUID
    state: Acceptance
    issued_at: datetime | None  # when the self-billed invoice was issued (None: not yet)
    acceptance_days: int
    silence_ends: datetime | None  # when silence becomes acceptance
    required: bool  # the organization pays only what the contractor accepted
    answer: Answer | None  # the contractor's latest answer

    @property
    def silence_ends_on(self) -> date | None:
        """The day (UTC, as the database dates everything) silence becomes acceptance."""
        return self.silence_ends.astimezone(UTC).date() if self.silence_ends else None

    @property
    def answerable(self) -> bool:
        """Whether the contractor may still answer (accept, or reject unless it did already)."""
        return self.state in (Acceptance.AWAITING, Acceptance.REJECTED)


_SEEN = text(
    "select invoice_id, state, issued_at, acceptance_days, silence_ends, acceptance_required"
    "  from invoice_acceptances_seen(cast(:ids as uuid[]))"
)


def _ids(invoice_ids: Iterable) -> list[uuid.UUID]:
    return sorted({i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)) for i in invoice_ids})


def acceptances_for(session: Session, invoice_ids: Iterable) -> dict[uuid.UUID, AcceptanceView]:
    """Where the answer stands on each named invoice the caller sees (two statements whatever the count)."""
    ids = _ids(invoice_ids)
    if not ids:
        return {}
    seen = session.execute(_SEEN, {"ids": ids}).all()
    answers = _latest_answers(session, [r.invoice_id for r in seen])
    return {
        r.invoice_id: AcceptanceView(
            r.invoice_id,
            Acceptance(r.state),
            r.issued_at,
            r.acceptance_days,
            r.silence_ends,
            r.acceptance_required,
            answers.get(r.invoice_id),
        )
        for r in seen
    }


def acceptance_of(session: Session, invoice_id) -> AcceptanceView | None:
    """Where the answer stands on one invoice; None when the caller does not see it."""
    return acceptances_for(session, [invoice_id]).get(_ids([invoice_id])[0])


def _latest_answers(session: Session, invoice_ids: list[uuid.UUID]) -> dict[uuid.UUID, Answer]:
    if not invoice_ids:
        return {}
    decider = aliased(User)
    rows = session.execute(
        select(InvoiceAcceptance, decider.name.label("decided_by_name"))
        .outerjoin(decider, decider.id == InvoiceAcceptance.decided_by)
        .where(InvoiceAcceptance.invoice_id.in_(invoice_ids))
        .order_by(InvoiceAcceptance.invoice_id, InvoiceAcceptance.decided_at.desc(), InvoiceAcceptance.id.desc())
        .ext(distinct_on(InvoiceAcceptance.invoice_id))
    ).all()
    return {
        r.InvoiceAcceptance.invoice_id: Answer(
            r.InvoiceAcceptance.decision,
            r.InvoiceAcceptance.reason,
            r.decided_by_name,
            r.InvoiceAcceptance.decided_at,
        )
        for r in rows
    }


# --- what the contractor has to answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToAnswer:
    invoice_id: uuid.UUID
    invoice_number: str
    description: str
    net_minor: int
    currency: str
    silence_ends: datetime

    @property
    def silence_ends_on(self) -> date:
        return self.silence_ends.astimezone(UTC).date()


TO_ANSWER_SHOWN = 20

# Issued, not void, never answered, and silence not yet counted as acceptance. Only documents of the last 90 days
# (the longest silence an organization may set) can be waiting: the rest are accepted, by answer or by silence.
_TO_ANSWER = text(
    """
    select i.id, i.invoice_number, i.description, i.net_minor, i.currency,
           d.issued_at + make_interval(hours => 24 * d.acceptance_days) as silence_ends
      from documents d
      join invoices i on i.org_id = d.org_id and i.id = d.invoice_id
     where d.contractor_id = :contractor and d.kind = 'self_billed_invoice'
       and d.issued_at > now() - make_interval(days => :longest)
       and acceptance_state(d.issued_at, null, d.acceptance_days, now(), i.status = 'void') = 'awaiting'
       and not exists (select 1 from invoice_acceptances a where a.org_id = i.org_id and a.invoice_id = i.id)
     order by d.issued_at, i.number
     limit :limit
    """
)


def to_answer(session: Session, contractor_id, *, limit: int = TO_ANSWER_SHOWN) -> list[ToAnswer]:
    """The contractor's self-billed invoices waiting for its answer, the one whose silence ends first first."""
    rows = session.execute(
        _TO_ANSWER, {"contractor": contractor_id, "longest": ACCEPTANCE_DAYS_RANGE[1], "limit": limit}
    ).all()
    return [ToAnswer(r.id, r.invoice_number, r.description, r.net_minor, r.currency, r.silence_ends) for r in rows]
