"""A contractor's tax form (issue 18, item 5): its own user fills in a W-9 (a US person) or a W-8BEN / W-8BEN-E
(foreign: no 1099) in the browser and certifies it. The TIN is encrypted by the server (services/tin_cipher) into a
row of its own that only finance and admins read; pages show its last four digits. Entering the form again
replaces it; leaving the TIN blank keeps the one on file."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import column, insert, select, table, update
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.roles import Role
from backoffice.domain.tax import CLASSIFICATIONS, US_STATES, FormKind, TinType, parse_tin, tax_form_problem
from backoffice.errors import Forbidden, ValidationError
from backoffice.models import TaxProfile
from backoffice.queries.tax import facts_of
from backoffice.services import audit
from backoffice.services.tin_cipher import encrypt_tin
from backoffice.services.validation import clean_text

_ZIP = r"^[0-9]{5}(-[0-9]{4})?$"
# No model: nothing reads a TIN row but the year-end export, in SQL; the contractor only writes one.
_TAX_TINS = table(
    "tax_tins",
    *(column(c) for c in ("org_id", "id", "contractor_id", "tin_type", "ciphertext", "last4", "entered_by")),
)


@dataclass(frozen=True)
class TaxFormInput:
    kind: str
    name: str = ""
    business_name: str = ""
    classification: str = ""
    tin_type: str = ""
    tin: str = ""  # blank: keep the TIN on file
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    certify: bool = False


@dataclass(frozen=True)
class Cleaned:
    kind: FormKind
    values: dict
    tin: tuple[TinType, str] | None  # a new TIN's type and digits


def clean(data: TaxFormInput, *, has_tin: bool) -> Cleaned:
    """The form's values as stored, or ValidationError with a message at each bad field. ``has_tin``: a TIN is on
    file already (a W-9 filled in again may leave it blank to keep it)."""
    errors: dict[str, str] = {}
    try:
        kind = FormKind(data.kind or "")
    except ValueError:
        raise ValidationError({"kind": "Choose the form you file: a W-9, a W-8BEN or a W-8BEN-E."}) from None
    w9 = kind is FormKind.W9

    def text_field(field, label, required, max_len):
        return clean_text(getattr(data, field), field, errors, label=label, required=required, max_len=max_len) or ""

    values = {
        "kind": kind.value,
        "name": text_field("name", "name as shown on the tax return" if w9 else "name", True, 200),
        "business_name": text_field("business_name", "business name", False, 200),
        "address_line1": text_field("address_line1", "street address", True, 200),
        "address_line2": text_field("address_line2", "second address line", False, 200),
        "city": text_field("city", "city", True, 100),
        "region": "",
        "postal_code": "",
        "classification": "",
        "country": "",
    }
    tin = None
    if w9:
        values["country"] = "US"
        if (data.classification or "") not in CLASSIFICATIONS:
            errors["classification"] = "Choose the federal tax classification (line 3a of the W-9)."
        else:
            values["classification"] = data.classification
        state = (data.region or "").strip().upper()
        if state not in US_STATES:
            errors["region"] = "Choose the state (two letters, like CA or NY)."
        values["region"] = state
        postal = (data.postal_code or "").strip()
        if not re.fullmatch(_ZIP, postal, re.ASCII):
            errors["postal_code"] = "Enter the ZIP code as five digits, or five and four (12345-6789)."
        values["postal_code"] = postal
        raw_tin = (data.tin or "").strip()
        try:
            tin_type = TinType(data.tin_type or "")
        except ValueError:
            tin_type = None
            if raw_tin or not has_tin:
                errors["tin_type"] = "Choose whether the TIN is an SSN or an EIN."
        if raw_tin and tin_type is not None:
            try:
                tin = (tin_type, parse_tin(raw_tin, tin_type))
            except ValueError as bad:
                errors["tin"] = str(bad)
        elif not raw_tin and not has_tin:
            errors["tin"] = "Enter the TIN (SSN or EIN)."
    else:
        values["region"] = text_field("region", "state or province", False, 100)
        values["postal_code"] = text_field("postal_code", "postal code", False, 20)
        country = (data.country or "").strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", country, re.ASCII):
            errors["country"] = "Enter the country of residence as its two-letter code (DE, GB, IN …)."
        elif country == "US":
            errors["country"] = "A US person files a W-9, not a W-8: choose the W-9 above."
        values["country"] = country
    if not data.certify:
        errors["certify"] = "Certify that the information is correct (the form's signature)."
    if errors:
        raise ValidationError(errors)
    return Cleaned(kind, values, tin)


def save_profile(session: Session, actor: Actor, data: TaxFormInput, *, key: str) -> TaxProfile:
    """Fill in (or again) the actor's contractor's tax form, certified in the actor's name. Only a contractor's own
    user; raises Forbidden for anyone else and ValidationError (nothing saved) for bad input. The audit event
    names the form and the TIN's last four, never the TIN."""
    if actor.role != Role.CONTRACTOR or actor.contractor_id is None:
        raise Forbidden("A contractor's tax form is filled in by the contractor's own user.")
    with unit_of_work(session):
        existing = session.execute(
            select(TaxProfile).where(TaxProfile.contractor_id == actor.contractor_id).with_for_update()
        ).scalar_one_or_none()
        keeps_tin = existing is not None and existing.tin_id is not None and existing.kind == FormKind.W9.value
        cleaned = clean(data, has_tin=keeps_tin)
        tin_id = existing.tin_id if keeps_tin and cleaned.kind is FormKind.W9 else None
        if cleaned.tin is not None:
            tin_type, digits = cleaned.tin
            tin_id = uuid.uuid4()
            # Core insert, no RETURNING: the contractor may write its TIN but never read it back.
            session.execute(
                insert(_TAX_TINS).values(
                    org_id=actor.org_id,
                    id=tin_id,
                    contractor_id=actor.contractor_id,
                    tin_type=tin_type.value,
                    ciphertext=encrypt_tin(key, actor.org_id, digits),
                    last4=digits[-4:],
                    entered_by=actor.user_id,
                )
            )
        values = {**cleaned.values, "tin_id": tin_id, "certified_by": actor.user_id}
        if existing is None:
            existing = TaxProfile(org_id=actor.org_id, contractor_id=actor.contractor_id, **values)
            session.add(existing)
            session.flush()
        else:
            # Every column, even unchanged: certifying again is news (the guard stamps certified_at).
            session.execute(
                update(TaxProfile).where(TaxProfile.org_id == actor.org_id, TaxProfile.id == existing.id).values(values)
            )
        session.refresh(existing)
        audit.record(
            session,
            actor,
            "tax_profile.saved",
            "contractor",
            actor.contractor_id,
            {
                "form": cleaned.kind.value,
                "tin_last4": existing.tin_last4,
                "new_tin": cleaned.tin is not None,
                "complete": tax_form_problem(facts_of(existing)) is None,
            },
        )
    return existing
