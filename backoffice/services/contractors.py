"""Contractors: the payees of an organization (admins manage them)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.roles import Role
from backoffice.errors import ValidationError
from backoffice.models import Contractor
from backoffice.services import audit
from backoffice.services.validation import clean_email, clean_text, get_visible


@dataclass(frozen=True)
class ContractorInput:
    legal_name: str
    email: str
    ap_vendor_id: str = ""
    payout_details: str = ""


_FIELDS = ("legal_name", "email", "ap_vendor_id", "payout_details")


def _clean(session: Session, actor: Actor, data: ContractorInput, exclude_id=None) -> dict:
    errors: dict[str, str] = {}
    values = {
        "legal_name": clean_text(data.legal_name, "legal_name", errors, label="legal name", required=True, max_len=200),
        "email": clean_email(data.email, "email", errors),
        "ap_vendor_id": clean_text(
            data.ap_vendor_id, "ap_vendor_id", errors, label="AP vendor id", required=False, max_len=64
        ),
        "payout_details": clean_text(
            data.payout_details,
            "payout_details",
            errors,
            label="payout details",
            required=False,
            max_len=500,
            multiline=True,
        ),
    }
    if "email" not in errors:
        q = select(Contractor.legal_name).where(
            Contractor.org_id == actor.org_id, func.lower(Contractor.email) == values["email"].lower()
        )
        if exclude_id:
            q = q.where(Contractor.id != exclude_id)
        if (clash := session.execute(q).scalar()) is not None:
            errors["email"] = f"{clash} already uses this email."
    if values["ap_vendor_id"] and "ap_vendor_id" not in errors:
        q = select(Contractor.legal_name).where(
            Contractor.org_id == actor.org_id, Contractor.ap_vendor_id == values["ap_vendor_id"]
        )
        if exclude_id:
            q = q.where(Contractor.id != exclude_id)
        if (clash := session.execute(q).scalar()) is not None:
            errors["ap_vendor_id"] = f"{clash} already has this AP vendor id."
    if errors:
        raise ValidationError(errors)
    return values


def create_contractor(session: Session, actor: Actor, data: ContractorInput) -> Contractor:
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        values = _clean(session, actor, data)
        contractor = Contractor(org_id=actor.org_id, **values)
        session.add(contractor)
        session.flush()
        audit.record(session, actor, "contractor.created", "contractor", contractor.id, values)
    return contractor


def get_contractor(session: Session, contractor_id) -> Contractor:
    return get_visible(session, Contractor, contractor_id)


def update_contractor(session: Session, actor: Actor, contractor_id, data: ContractorInput) -> Contractor:
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        contractor = get_contractor(session, contractor_id)
        values = _clean(session, actor, data, exclude_id=contractor.id)
        changes = {
            f: {"before": getattr(contractor, f), "after": values[f]}
            for f in _FIELDS
            if getattr(contractor, f) != values[f]
        }
        for f in _FIELDS:
            setattr(contractor, f, values[f])
        if changes:
            contractor.updated_at = func.now()
            session.flush()
            audit.record(session, actor, "contractor.updated", "contractor", contractor.id, changes)
    return contractor
