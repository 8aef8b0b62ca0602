"""Holds (issue 18): finance or an admin holds an invoice, or a whole contractor, with a reason. Nothing held is
exported or paid (the database refuses: sql/money.sql, invoices_move_guard and invoices_exported_check) until the
hold is released, which is recorded (who, when, a note) like the hold itself."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.invoices import handed_to_rail
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import Conflict, Forbidden, InvalidTransition, ValidationError
from backoffice.models import Contractor, Hold, Invoice
from backoffice.services import audit
from backoffice.services.validation import clean_text, get_visible

HOLDABLE = ("pending_approval", "approved", "exported")


def _reason(reason: str, field: str = "reason", *, required: bool = True, label: str = "reason for the hold") -> str:
    errors: dict[str, str] = {}
    cleaned = clean_text(reason, field, errors, label=label, required=required, max_len=2000, multiline=True)
    if errors:
        raise ValidationError(errors)
    return cleaned


def hold_invoice(session: Session, actor: Actor, invoice_id, reason: str) -> Hold:
    """Hold one invoice not yet paid. Raises Forbidden (not finance), ValidationError (``reason``), Conflict (held
    already) or InvalidTransition (paid, void, or being paid by Stripe right now)."""
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance or an admin holds a payment.")
    cleaned = _reason(reason)
    with unit_of_work(session):
        invoice = get_visible(session, Invoice, invoice_id)
        if invoice.status not in HOLDABLE:
            raise InvalidTransition(f"{invoice.invoice_number} is {invoice.status.replace('_', ' ')}: nothing to hold.")
        if handed_to_rail(invoice.status, in_batch=invoice.batch_id is not None):
            raise InvalidTransition(
                f"Stripe is paying {invoice.invoice_number} right now; hold it once the transfer is answered."
            )
        hold = _insert(session, Hold(org_id=actor.org_id, invoice_id=invoice.id, reason=cleaned, held_by=actor.user_id))
        audit.record(
            session,
            actor,
            "invoice.held",
            "invoice",
            invoice.id,
            {"invoice_number": invoice.invoice_number, "reason": cleaned, "hold_id": str(hold.id)},
        )
    return hold


def hold_invoices(session: Session, actor: Actor, invoice_ids, reason: str) -> list[Hold]:
    """Hold several invoices with one reason (the payment queue's bulk hold): all of them or none. Each is held as
    ``hold_invoice`` holds one, audited one by one; the first refusal (held already, paid, with Stripe) undoes the
    others and is raised with the invoice's number."""
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance or an admin holds a payment.")
    _reason(reason)
    held = []
    with unit_of_work(session):
        for invoice_id in invoice_ids:
            try:
                held.append(hold_invoice(session, actor, invoice_id, reason))
            except Conflict:
                number = get_visible(session, Invoice, invoice_id).invoice_number
                raise Conflict(f"{number} is on hold already; nothing was held.") from None
    return held


def hold_contractor(session: Session, actor: Actor, contractor_id, reason: str) -> Hold:
    """Hold every payment to a contractor, present and future, until released."""
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance or an admin holds a contractor's payments.")
    cleaned = _reason(reason)
    with unit_of_work(session):
        contractor = get_visible(session, Contractor, contractor_id)
        hold = _insert(
            session, Hold(org_id=actor.org_id, contractor_id=contractor.id, reason=cleaned, held_by=actor.user_id)
        )
        audit.record(
            session,
            actor,
            "contractor.held",
            "contractor",
            contractor.id,
            {"contractor": contractor.legal_name, "reason": cleaned, "hold_id": str(hold.id)},
        )
    return hold


def _insert(session: Session, hold: Hold) -> Hold:
    try:
        with session.begin_nested():
            session.add(hold)
            session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig.diag, "constraint_name", None) in ("holds_live_invoice", "holds_live_contractor"):
            raise Conflict("It is on hold already; release that hold first to change its reason.") from None
        raise
    return hold


def release(session: Session, actor: Actor, hold_id, note: str = "") -> Hold:
    """Release a live hold, with an optional note; what it held is payable again unless something else holds it."""
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance or an admin releases a hold.")
    cleaned = _reason(note, "note", required=False, label="note on the release")
    with unit_of_work(session):
        hold = get_visible(session, Hold, hold_id)
        if hold.released_at is not None:
            raise Conflict(f"This hold was released {hold.released_at:%d %b %Y %H:%M} already.")
        session.execute(
            update(Hold)
            .where(Hold.id == hold.id, Hold.org_id == hold.org_id, Hold.released_at.is_(None))
            .values(released_by=actor.user_id, released_at=datetime.now(UTC), release_note=cleaned)
        )
        session.refresh(hold)
        kind, entity = ("invoice", hold.invoice_id) if hold.invoice_id else ("contractor", hold.contractor_id)
        audit.record(
            session,
            actor,
            f"{kind}.hold_released",
            kind,
            entity,
            {"hold_id": str(hold.id), "reason": hold.reason, "note": cleaned},
        )
    return hold


def live_hold(session: Session, *, invoice_id=None, contractor_id=None) -> Hold | None:
    where = Hold.invoice_id == invoice_id if invoice_id is not None else Hold.contractor_id == contractor_id
    return session.execute(select(Hold).where(where, Hold.released_at.is_(None))).scalar_one_or_none()
