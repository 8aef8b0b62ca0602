"""Set-up from the command line, run as the owner role: the first organization, users, demo data.

These run before anyone can sign in, so there is no member to act as; they connect with the owner
role (which bypasses RLS) and record their audit events as the system.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backoffice.domain.invoices import invoice_prefix_for
from backoffice.domain.reviews import DEFAULT_PARTIAL_POLICY
from backoffice.domain.roles import Role
from backoffice.errors import ValidationError
from backoffice.models import Contractor, Membership, Organization, User
from backoffice.services import audit
from backoffice.services.auth import MIN_PASSWORD_LENGTH, hash_password
from backoffice.services.organizations import OrgSettings, validate_settings
from backoffice.services.validation import clean_email, clean_text


def create_org(
    session: Session,
    name: str,
    currency: str = "USD",
    retainage_bps: int = 1000,
    terms_days: int = 30,
    partial_policy: str = DEFAULT_PARTIAL_POLICY.value,
) -> Organization:
    validate_settings(OrgSettings(name, currency, retainage_bps, terms_days, partial_policy))
    if session.execute(select(Organization.id).where(func.lower(Organization.name) == name.strip().lower())).first():
        raise ValidationError({"name": f"An organization named {name.strip()!r} already exists."})
    org = Organization(
        name=name.strip(),
        default_currency=currency,
        default_retainage_bps=retainage_bps,
        payment_terms_days=terms_days,
        partial_policy=partial_policy,
        invoice_prefix=invoice_prefix_for(name),
    )
    session.add(org)
    session.flush()
    audit.record_system(session, org.id, "organization.created", "organization", org.id, {"name": org.name})
    return org


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    password: str | None = None,
    password_hash: str | None = None,
    org_id: uuid.UUID,
    role: Role,
    contractor_id: uuid.UUID | None = None,
) -> User:
    """Create (or reuse, by email) a user with a password and give them ``role`` in ``org_id``."""
    errors: dict[str, str] = {}
    email = clean_email(email, "email", errors)
    name = clean_text(name, "name", errors, label="name", required=True, max_len=200)
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if errors:
        raise ValidationError(errors)
    user = session.execute(select(User).where(func.lower(User.email) == email.lower())).scalar_one_or_none()
    if user is None:
        user = User(email=email, name=name)
        session.add(user)
        session.flush()
    # A password is set only on an account that has none: set-up never changes a password behind its
    # owner's back, and never leaves an account it makes a member without one (a pending link from
    # another organization could otherwise choose it). password_hash is deliberately not mapped on User.
    pw_hash = password_hash or (hash_password(password) if password else None)
    has_password = session.execute(
        text("select password_hash is not null from users where id = :id"), {"id": user.id}
    ).scalar_one()
    if not has_password:
        if not pw_hash:
            raise ValidationError({"password": "This account has no password yet: give one."})
        session.execute(text("update users set password_hash = :h where id = :id"), {"h": pw_hash, "id": user.id})
    if session.execute(select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user.id)).first():
        raise ValidationError({"email": f"{email} is already a member of this organization."})
    if contractor_id is not None:
        from backoffice.models import Contractor

        if (
            session.execute(
                select(Contractor.id).where(Contractor.id == contractor_id, Contractor.org_id == org_id)
            ).first()
            is None
        ):
            raise ValidationError({"contractor": "No such contractor in this organization."})
    # Created by an operator, so accepted at once (an invitation is accepted by the person instead).
    membership = Membership(
        org_id=org_id, user_id=user.id, role=Role(role).value, contractor_id=contractor_id, accepted_at=func.now()
    )
    session.add(membership)
    session.flush()
    audit.record_system(
        session, org_id, "member.created", "membership", membership.id, {"email": email, "role": Role(role).value}
    )
    return user


def create_contractor(
    session: Session,
    org_id: uuid.UUID,
    legal_name: str,
    email: str,
    ap_vendor_id: str | None = None,
    payout_details: str | None = None,
) -> Contractor:
    contractor = Contractor(
        org_id=org_id, legal_name=legal_name, email=email, ap_vendor_id=ap_vendor_id, payout_details=payout_details
    )
    session.add(contractor)
    session.flush()
    audit.record_system(
        session, org_id, "contractor.created", "contractor", contractor.id, {"legal_name": legal_name, "email": email}
    )
    return contractor
