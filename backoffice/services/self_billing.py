"""Self-billing (issue 21, item 4; EU VAT Directive 2006/112/EC art. 224; DESIGN.md section 7b): an admin records
the agreement with a contractor, the contractor's user confirms it; the contractor's user accepts or rejects (with a
reason) each self-billed invoice the organization issues for it. Silence counts as acceptance after the
organization's ``acceptance_days``: nothing is written for it, the database's clock says so (queries/self_billing).

The rules are domain.self_billing's; sql/self_billing.sql's guards hold them again against a race or a caller that
skips these services, and their refusals are turned into the same words here.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.roles import Role
from backoffice.domain.self_billing import Acceptance, answer_problem
from backoffice.errors import Conflict, Forbidden, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import Contractor, Invoice, InvoiceAcceptance, SelfBillingAgreement
from backoffice.queries.self_billing import acceptance_of, agreement_of
from backoffice.services import audit
from backoffice.services.validation import clean_date, clean_text, get_visible, parse_id

MAX_TERMS = 20000  # the table's CHECK
MAX_REASON = 1000
DECISIONS = ("accepted", "rejected")

_TODAY = text("select (now() at time zone 'UTC')::date")  # the database's day, as it dates everything else


def _refusal(exc: DBAPIError) -> str | None:
    """A guard's refusal in words for a page (its message, as a sentence); None for any other database error."""
    if getattr(exc.orig, "sqlstate", None) not in ("23514", "23505"):
        return None
    diag = getattr(exc.orig, "diag", None)
    message = (getattr(diag, "message_primary", None) or "").strip()
    if not message or message.startswith(("new row", "duplicate key")):
        return None  # a CHECK or the unique index: the caller's own words say it better
    return message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")


# --- the agreement -------------------------------------------------------------------------------------------------


def record_agreement(session: Session, actor: Actor, contractor_id, agreed_on: str | date, terms: str):
    """Record the self-billing agreement with a contractor (it becomes the one in force, waiting for the
    contractor's confirmation). Admins only (Forbidden for anyone else); NotFound for a contractor the admin does not
    see; ValidationError, nothing saved, for a missing or future date or missing, long or unprintable terms. The
    contractor's users are told."""
    if actor.role != Role.ADMIN:
        raise Forbidden("Only an admin records a self-billing agreement.")
    with unit_of_work(session):
        contractor = get_visible(session, Contractor, contractor_id)
        errors: dict[str, str] = {}
        raw_day = agreed_on.isoformat() if isinstance(agreed_on, date) else agreed_on
        day = clean_date(raw_day, "agreed_on", errors, label="date of the agreement")
        if day is not None and day > session.execute(_TODAY).scalar_one():
            errors["agreed_on"] = f"An agreement is recorded once it is made; {day:%d %b %Y} is in the future."
        cleaned = clean_text(
            terms, "terms", errors, label="terms of the agreement", required=True, max_len=MAX_TERMS, multiline=True
        )
        if errors:
            raise ValidationError(errors)
        agreement = SelfBillingAgreement(
            org_id=actor.org_id,
            contractor_id=contractor.id,
            agreed_on=day,
            terms=cleaned,
            recorded_by=actor.user_id,
        )
        session.add(agreement)
        session.flush()
        audit.record(
            session,
            actor,
            "self_billing.agreement_recorded",
            "contractor",
            contractor.id,
            {"agreement_id": str(agreement.id), "agreed_on": day.isoformat(), "terms_chars": len(cleaned)},
        )
        queue.notify(session, actor.org_id, "self_billing.agreement_recorded", agreement.id)
    return agreement


def confirm_agreement(session: Session, actor: Actor, agreement_id, *, agreed: bool = True):
    """The contractor's user confirms the agreement in force with its contractor, in its own name. Forbidden for
    anyone else; NotFound for an agreement it does not see; ValidationError when ``agreed`` (the page's checkbox) is
    not given; Conflict when it is confirmed already or a newer one was recorded since."""
    if actor.role != Role.CONTRACTOR or actor.contractor_id is None:
        raise Forbidden("A self-billing agreement is confirmed by the contractor's own user.")
    with unit_of_work(session):
        row_id = parse_id(agreement_id)
        agreement = (
            row_id
            and session.execute(
                select(SelfBillingAgreement).where(SelfBillingAgreement.id == row_id)
            ).scalar_one_or_none()
        )
        if not agreement or agreement.contractor_id != actor.contractor_id:
            raise NotFound()
        if agreement.confirmed_at is not None:
            raise Conflict("You confirmed this self-billing agreement already.")
        in_force = agreement_of(session, actor.contractor_id)
        if in_force is not None and in_force.id != agreement.id:
            raise Conflict("A newer self-billing agreement was recorded since: read and confirm that one.")
        if not agreed:
            raise ValidationError({"agree": "Tick the box to say you agree to these terms."})
        try:
            # Only confirmed_by is the contractor's to write; the guard stamps confirmed_at and refuses a second one.
            session.execute(
                update(SelfBillingAgreement)
                .where(SelfBillingAgreement.org_id == actor.org_id, SelfBillingAgreement.id == agreement.id)
                .values(confirmed_by=actor.user_id)
            )
        except DBAPIError as exc:
            words = _refusal(exc)
            if words is None:
                raise
            raise Conflict(words) from None
        session.refresh(agreement)
        audit.record(
            session,
            actor,
            "self_billing.agreement_confirmed",
            "contractor",
            actor.contractor_id,
            {"agreement_id": str(agreement.id), "agreed_on": agreement.agreed_on.isoformat()},
        )
    return agreement


# --- the answer to each self-billed invoice --------------------------------------------------------------------------


def answer_invoice(session: Session, actor: Actor, invoice_id, decision: str, reason: str = ""):
    """The contractor's user accepts (``decision`` 'accepted') or rejects ('rejected', with a reason) the self-billed
    invoice of one of its contractor's invoices, judged by the database's clock. Forbidden for anyone else; NotFound
    for an invoice it does not see (another contractor's); ValidationError, nothing saved, for a rejection without a
    reason (or one too long or unprintable) or an unknown decision; Conflict when the invoice is not issued, void,
    accepted already (silence included), or rejected already. A rejection tells the engagement's owner and finance."""
    if actor.role != Role.CONTRACTOR or actor.contractor_id is None:
        raise Forbidden("A self-billed invoice is accepted or rejected by its contractor's own user.")
    with unit_of_work(session):
        invoice = get_visible(session, Invoice, invoice_id)
        if invoice.contractor_id != actor.contractor_id:
            raise NotFound()
        if decision not in DECISIONS:
            raise ValidationError({"decision": "Choose accept or reject."})
        errors: dict[str, str] = {}
        cleaned = None
        if decision == "rejected":
            cleaned = clean_text(
                reason, "reason", errors, label="reason", required=False, max_len=MAX_REASON, multiline=True
            )
        if errors:
            raise ValidationError(errors)
        view = acceptance_of(session, invoice.id)
        state = view.state if view else Acceptance.NOT_ISSUED
        problem = answer_problem(state, decision, cleaned or "")
        if problem:
            # Only a missing reason is the form's to correct; the rest is where the invoice stands.
            if answer_problem(state, decision, "a reason") is None:
                raise ValidationError({"reason": problem})
            raise Conflict(problem)
        answer = InvoiceAcceptance(
            org_id=actor.org_id,
            invoice_id=invoice.id,
            contractor_id=actor.contractor_id,
            decision=decision,
            reason=cleaned,
            decided_by=actor.user_id,
        )
        session.add(answer)
        try:
            session.flush()
        except DBAPIError as exc:
            words = _refusal(exc)
            if words is None and getattr(exc.orig, "sqlstate", None) == "23505":
                words = "This self-billed invoice is accepted already."  # another answer won the race
            if words is None:
                raise
            raise Conflict(words) from None
        audit.record(
            session,
            actor,
            f"self_billing.invoice_{decision}",
            "invoice",
            invoice.id,
            {"invoice_number": invoice.invoice_number, "answer_id": str(answer.id), "reason": cleaned},
        )
        if decision == "rejected":
            queue.notify(session, actor.org_id, "self_billing.invoice_rejected", answer.id)
    return answer
