"""E-invoicing profiles (issue 21, item 1; DESIGN.md section 7b): what a self-billed e-invoice says of the
organization (the buyer) and of each contractor (the seller), and the organization's acceptance settings.

A profile may be saved incomplete: the pages say in words what is still missing for e-invoicing
(``missing_for_einvoicing``), and the e-invoice itself is not issued until nothing is (services/einvoices.py reads
``domain.einvoice.party_problems``). The database holds the same shape (CHECKs of einvoice_profiles, revision 0031)
and who may write which (sql/self_billing.sql): the organization's own by admins; a contractor's by admins, finance
or the contractor's own user; always in the writer's name.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.countries import COUNTRY_CODES, vat_id_problem
from backoffice.domain.einvoice import (
    ENDPOINT_SCHEMES,
    Party,
    VatCategory,
    endpoint_problem,
    missing_details,
    vat_problems,
    vat_rate_problem,
)
from backoffice.domain.percent import parse_percent_to_bps
from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.domain.self_billing import ACCEPTANCE_DAYS_RANGE
from backoffice.errors import Forbidden, NotFound, ValidationError
from backoffice.models import Contractor, EInvoiceProfile, Organization
from backoffice.services import audit
from backoffice.services.organizations import current_organization
from backoffice.services.validation import clean_text, clean_whole_number, get_visible

# Where a problem of the organization's details is fixed, as domain.einvoice's sentences name it (``who``).
ORG_DETAILS = "the organization's e-invoicing details (Settings → E-invoicing)"
TAX_SCHEMES = ("VAT", "TAX")  # a VAT identifier, or another tax registration identifier
# The table's CHECKs (revision 0031), as a form reads them.
_TAX_ID = re.compile(r"[A-Za-z0-9.\-/ ]{1,40}", re.ASCII)
_ENDPOINT_ID = re.compile(r"[A-Za-z0-9.:_\-]{1,100}", re.ASCII)
_TEXT_FIELDS = (  # field, label in messages, longest
    ("legal_name", "legal name", 200),
    ("street", "street address", 200),
    ("city", "city", 100),
    ("postal_code", "postal code", 20),
)
PROFILE_FIELDS = (
    "legal_name",
    "street",
    "city",
    "postal_code",
    "country",
    "tax_id",
    "tax_scheme",
    "endpoint_scheme",
    "endpoint_id",
    "vat_category",
    "vat_bps",
)


@dataclass(frozen=True)
class ProfileInput:
    """A profile form as typed. ``vat_category`` and ``vat_rate`` are the contractor's only (the seller's VAT)."""

    legal_name: str = ""
    street: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""  # ISO 3166-1 alpha-2, any case; blank while unknown
    tax_id: str = ""
    tax_scheme: str = "VAT"
    endpoint_scheme: str = ""  # a key of domain.einvoice.ENDPOINT_SCHEMES
    endpoint_id: str = ""
    vat_category: str = ""  # a domain.einvoice.VatCategory value; blank while not chosen
    vat_rate: str = ""  # a percent as typed, "20" or "7.7"; blank is 0%


def clean(data: ProfileInput, *, seller: bool) -> dict:
    """The profile's column values as stored, or ValidationError with a message at each bad field. ``seller``: a
    contractor's profile (with its VAT category and rate); the organization's has neither."""
    errors: dict[str, str] = {}
    values: dict = {}
    for field, label, longest in _TEXT_FIELDS:
        values[field] = clean_text(getattr(data, field), field, errors, label=label, required=False, max_len=longest)
        values[field] = values[field] or ""
    values["country"] = (data.country or "").strip().upper()
    if values["country"] and values["country"] not in COUNTRY_CODES:
        errors["country"] = "Choose the country from the list (its two-letter ISO code, like DE, FR or GB)."
    values["tax_scheme"] = data.tax_scheme or ""
    if values["tax_scheme"] not in TAX_SCHEMES:
        errors["tax_scheme"] = "Choose whether the tax id is a VAT number or another tax id."
    tax_id = (data.tax_id or "").strip()
    if values["tax_scheme"] == "VAT":
        tax_id = tax_id.upper()  # the country prefix is capital letters (BR-CO-09)
    if tax_id and not _TAX_ID.fullmatch(tax_id):
        errors["tax_id"] = "Use letters, digits, spaces, dots, dashes or slashes, at most 40 (like DE123456789)."
    elif tax_id and values["tax_scheme"] == "VAT" and (problem := vat_id_problem(tax_id)):
        errors["tax_id"] = problem
    values["tax_id"] = tax_id
    values["endpoint_scheme"] = (data.endpoint_scheme or "").strip()
    values["endpoint_id"] = (data.endpoint_id or "").strip()
    if values["endpoint_scheme"] and values["endpoint_scheme"] not in ENDPOINT_SCHEMES:
        errors["endpoint_scheme"] = "Choose the Peppol endpoint's scheme from the list."
    if values["endpoint_id"] and not _ENDPOINT_ID.fullmatch(values["endpoint_id"]):
        errors["endpoint_id"] = "Use letters, digits, dots, colons, dashes or underscores, at most 100."
    elif values["endpoint_id"] and not values["endpoint_scheme"] and "endpoint_scheme" not in errors:
        errors["endpoint_scheme"] = "Choose the scheme of this Peppol endpoint id, or clear the id."
    elif values["endpoint_scheme"] and not values["endpoint_id"] and "endpoint_scheme" not in errors:
        errors["endpoint_id"] = "Enter the Peppol endpoint id for this scheme, or choose no scheme."
    elif "endpoint_scheme" not in errors and (
        problem := endpoint_problem(values["endpoint_scheme"], values["endpoint_id"])
    ):  # the official rules would refuse every e-invoice naming it (PEPPOL-COMMON-R040 to R050)
        errors["endpoint_id"] = problem
    values["vat_category"], values["vat_bps"] = _vat(data, seller, errors)
    if errors:
        raise ValidationError(errors)
    return values


def _vat(data: ProfileInput, seller: bool, errors: dict[str, str]) -> tuple[str, int]:
    category, rate = data.vat_category or "", (data.vat_rate or "").strip()
    if not seller:
        if category or rate:
            errors["vat_category"] = "The organization's details carry no VAT category: each contractor's do."
        return "", 0
    if category and category not in {c.value for c in VatCategory}:
        errors["vat_category"] = "Choose the contractor's VAT category from the list."
        return "", 0
    try:
        bps = parse_percent_to_bps(rate) if rate else 0
    except ValueError as bad:
        errors["vat_rate"] = str(bad)
        return category, 0
    if problem := vat_rate_problem(category, bps):
        errors["vat_rate"] = problem
    return category, bps


# --- saving -------------------------------------------------------------------------------------------------


def save_org_profile(session: Session, actor: Actor, data: ProfileInput) -> EInvoiceProfile:
    """Save the organization's own profile (the buyer's): admins only; Forbidden for anyone else, ValidationError
    (nothing saved) for bad input. The audit event keeps each changed field's before and after."""
    actor.require(Role.ADMIN)
    values = clean(data, seller=False)
    with unit_of_work(session):
        profile, before = _upsert(session, actor, None, values)
        audit.record(session, actor, "einvoice_profile.saved", "organization", actor.org_id, _event(profile, before))
    return profile


def save_contractor_profile(session: Session, actor: Actor, contractor_id, data: ProfileInput) -> EInvoiceProfile:
    """Save a contractor's profile (the seller's): admins, finance, or the contractor's own user. NotFound for a
    contractor the actor cannot see (another's, to a contractor's user), Forbidden for a project owner,
    ValidationError (nothing saved) for bad input."""
    if actor.role == Role.CONTRACTOR:
        if str(actor.contractor_id) != str(contractor_id):
            raise NotFound()
    elif actor.role not in FINANCE_ROLES:
        raise Forbidden("A contractor's e-invoicing details are kept by finance, admins or the contractor.")
    contractor = get_visible(session, Contractor, contractor_id)
    values = clean(data, seller=True)
    with unit_of_work(session):
        profile, before = _upsert(session, actor, contractor.id, values)
        audit.record(session, actor, "einvoice_profile.saved", "contractor", contractor.id, _event(profile, before))
    return profile


def _upsert(
    session: Session, actor: Actor, contractor_id: uuid.UUID | None, values: dict
) -> tuple[EInvoiceProfile, dict]:
    """Insert the party's profile or update the one there: one statement, so two first saves at once leave one row
    (the unique index einvoice_profiles_one_per_party is the arbiter). Returns the row as written and the values it
    had before (empty when new), for the audit event."""
    existing = profile_of(session, contractor_id, for_update=True)
    before = {f: getattr(existing, f) for f in PROFILE_FIELDS} if existing else {}
    written = {**values, "updated_by": actor.user_id}
    statement = insert(EInvoiceProfile).values(org_id=actor.org_id, contractor_id=contractor_id, **written)
    statement = statement.on_conflict_do_update(
        index_elements=[EInvoiceProfile.org_id, EInvoiceProfile.contractor_id], set_=written
    ).returning(EInvoiceProfile.id)
    profile_id = session.execute(statement).scalar_one()
    if existing is not None:
        session.expire(existing)  # the row as the database wrote it (the guard stamps updated_at)
    return session.get(EInvoiceProfile, (actor.org_id, profile_id), populate_existing=True), before


def _event(profile: EInvoiceProfile, before: dict) -> dict:
    after = {f: getattr(profile, f) for f in PROFILE_FIELDS}
    changes = {f: {"before": before.get(f), "after": after[f]} for f in PROFILE_FIELDS if before.get(f) != after[f]}
    return {"profile_id": str(profile.id), "changes": changes, "missing": missing_for_einvoicing(profile)}


# --- reading ------------------------------------------------------------------------------------------------


def profile_of(session: Session, contractor_id, *, for_update: bool = False, org_id=None) -> EInvoiceProfile | None:
    """The contractor's profile, or the organization's own with ``contractor_id`` None; None when there is none
    (or RLS hides it: a contractor's user reads its own and the organization's only). ``org_id`` names the
    organization where RLS does not (the owner role: the demo, the CLI)."""
    query = select(EInvoiceProfile)
    if org_id is not None:
        query = query.where(EInvoiceProfile.org_id == org_id)
    if contractor_id is None:
        query = query.where(EInvoiceProfile.contractor_id.is_(None))
    else:
        query = query.where(EInvoiceProfile.contractor_id == contractor_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def profiles_of(session: Session, contractor_ids: list) -> dict[uuid.UUID, EInvoiceProfile]:
    """The profiles of these contractors (a page of a list), by contractor id; those with none are absent."""
    if not contractor_ids:
        return {}
    found = session.execute(select(EInvoiceProfile).where(EInvoiceProfile.contractor_id.in_(contractor_ids)))
    return {p.contractor_id: p for p in found.scalars()}


def party_of(profile: EInvoiceProfile | None) -> Party | None:
    """What the e-invoice says of the profile's party (domain.einvoice.Party)."""
    if profile is None:
        return None
    return Party(
        legal_name=profile.legal_name,
        street=profile.street,
        city=profile.city,
        postal_code=profile.postal_code,
        country=profile.country,
        tax_id=profile.tax_id,
        tax_scheme=profile.tax_scheme,
        endpoint_scheme=profile.endpoint_scheme,
        endpoint_id=profile.endpoint_id,
    )


_NOTHING = Party("", "", "", "", "")


def missing_for_einvoicing(profile: EInvoiceProfile | None, *, seller: bool | None = None) -> list[str]:
    """What the profile still lacks for an e-invoice, in words for the page ("street", "Peppol endpoint (scheme and
    id)", "VAT category"); empty when nothing. No profile lacks everything. ``seller`` (default: whether the profile
    is a contractor's) adds the VAT category a contractor's needs."""
    missing = missing_details(party_of(profile) or _NOTHING)
    if seller is None:
        seller = profile is not None and profile.contractor_id is not None
    if seller and (profile is None or not profile.vat_category):
        missing.append("VAT category")
    return missing


def vat_notes(session: Session, profile: EInvoiceProfile | None, seller_who: str) -> list[str]:
    """What a contractor's VAT category still needs of the two parties' tax ids (domain.einvoice.vat_problems),
    once a category is chosen; the words say where to fix each (``seller_who``: where the contractor's are)."""
    if profile is None or not profile.vat_category:
        return []
    buyer = party_of(profile_of(session, None)) or _NOTHING
    return vat_problems(
        party_of(profile),
        buyer,
        profile.vat_category,
        profile.vat_bps,
        seller_who,
        ORG_DETAILS,
    )


# --- the organization's acceptance settings -----------------------------------------------------------------


def update_acceptance_settings(session: Session, actor: Actor, days: str, required: bool) -> Organization:
    """How the contractor's acceptance of a self-billed invoice works here (domain.self_billing): the days of
    silence that count as acceptance, and whether only an accepted invoice is paid. Admins only; ValidationError
    for days outside ACCEPTANCE_DAYS_RANGE. The audit event keeps each changed setting's before and after."""
    actor.require(Role.ADMIN)
    errors: dict[str, str] = {}
    low, high = ACCEPTANCE_DAYS_RANGE
    parsed = clean_whole_number(str(days), "acceptance_days", errors, minimum=low, maximum=high, label="days")
    if errors:
        raise ValidationError(errors)
    with unit_of_work(session):
        org = current_organization(session, actor)
        changes = {}
        for field, after in (("acceptance_days", parsed), ("acceptance_required", bool(required))):
            if getattr(org, field) != after:
                changes[field] = {"before": getattr(org, field), "after": after}
                setattr(org, field, after)
        if changes:
            session.flush()
            audit.record(session, actor, "organization.settings_changed", "organization", org.id, changes)
    return org
