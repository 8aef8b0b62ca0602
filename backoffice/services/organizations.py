"""Organization settings (admins)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice import formatting
from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import completion
from backoffice.domain import evidence as evidence_rules
from backoffice.domain.ap_export import DATE_FORMATS, Preset, custom_layout
from backoffice.domain.currency import is_currency
from backoffice.domain.percent import format_bps
from backoffice.domain.roles import Role
from backoffice.errors import NotFound, ValidationError
from backoffice.models import Organization, User
from backoffice.services import audit
from backoffice.services.validation import clean_text

PARTIAL_POLICIES = ("route_back", "split")
_PREFIX = re.compile(r"^[A-Z0-9]{2,8}$", re.ASCII)
_LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$", re.ASCII)  # the form the database's CHECK accepts
MAX_REVIEW_SLA_DAYS = 60
EVIDENCE_LIMITS = {
    "evidence_max_files": evidence_rules.MAX_FILES,
    "evidence_max_file_mb": evidence_rules.MAX_FILE_MB,
    "evidence_max_submission_mb": evidence_rules.MAX_SUBMISSION_MB,
}


@dataclass(frozen=True)
class OrgSettings:
    name: str
    default_currency: str
    default_retainage_bps: int
    payment_terms_days: int
    partial_policy: str
    evidence_max_files: int = evidence_rules.MAX_FILES
    evidence_max_file_mb: int = evidence_rules.MAX_FILE_MB
    evidence_max_submission_mb: int = evidence_rules.MAX_SUBMISSION_MB
    invoice_prefix: str | None = None  # None keeps the current prefix
    segregation_of_duties: bool = True
    review_sla_days: int | None = None  # None keeps the current value
    locale: str | None = None  # None keeps the current locale
    stripe_rail_enabled: bool | None = None  # payments through Stripe Connect (issue 17); None keeps it
    auto_pay_enabled: bool | None = None  # pay by Stripe on each invoice's due date; None keeps it
    tax_form_required: bool | None = None  # no export or payment without a complete tax form (issue 18); None keeps it
    # Completion billing (issue 20): whether engagements may take an advance, and the advance a new one starts with
    # (0 to domain.completion.ADVANCE_MAX_BPS); None keeps each. Turning advances off changes no engagement already set
    # up: only new terms are held to it.
    advances_enabled: bool | None = None
    default_advance_bps: int | None = None


@dataclass(frozen=True)
class ExportSettings:
    """The AP export layout (DESIGN.md section 7): a preset, or the admin's own columns."""

    preset: str
    expense_account: str
    date_format: str
    columns: list  # [{"field": ..., "header": ...}] in order, for the custom layout
    bom: bool | None = None  # generic and custom files start with a byte-order mark (Excel); None: unchanged


def current_organization(session: Session, actor: Actor) -> Organization:
    org = session.execute(select(Organization).where(Organization.id == actor.org_id)).scalar_one_or_none()
    if org is None:
        raise NotFound()
    return org


def auto_pay_admin(session: Session, org: Organization) -> str | None:
    """The name of the admin in whose name automatic payments go (who turned them on), if on."""
    if not org.auto_pay_enabled or org.auto_pay_by is None:
        return None
    return session.execute(select(User.name).where(User.id == org.auto_pay_by)).scalar_one_or_none()


def validate_settings(s: OrgSettings) -> None:
    errors: dict[str, str] = {}
    clean_text(s.name, "name", errors, label="organization's name", required=True, max_len=200)
    if not is_currency(s.default_currency):
        errors["default_currency"] = "Choose a three-letter ISO 4217 currency code, such as USD or EUR."
    if not 0 <= s.default_retainage_bps <= 10000:
        errors["default_retainage"] = "Retainage must be between 0% and 100%."
    if not 0 <= s.payment_terms_days <= 365:
        errors["payment_terms_days"] = "Payment terms must be between 0 and 365 days (0 pays on approval)."
    if s.partial_policy not in PARTIAL_POLICIES:
        errors["partial_policy"] = "Choose how partial approvals are handled."
    for name, maximum in EVIDENCE_LIMITS.items():
        if not isinstance(getattr(s, name), int) or not 1 <= getattr(s, name) <= maximum:
            errors[name] = f"Enter a whole number between 1 and {maximum}."
    if s.invoice_prefix is not None and not _PREFIX.match(s.invoice_prefix.strip().upper()):
        errors["invoice_prefix"] = "Use 2 to 8 letters or digits, like ACME; invoice numbers read ACME-000123."
    if s.review_sla_days is not None and not 1 <= s.review_sla_days <= MAX_REVIEW_SLA_DAYS:
        errors["review_sla_days"] = f"Enter a whole number of days between 1 and {MAX_REVIEW_SLA_DAYS}."
    if s.locale is not None and not (_LOCALE.match(s.locale) and formatting.is_locale(s.locale)):
        errors["locale"] = "Choose a language and region for amounts and dates, such as English (United States)."
    if s.default_advance_bps is not None and not 0 <= s.default_advance_bps <= completion.ADVANCE_MAX_BPS:
        errors["default_advance"] = (
            f"An advance is between 0% and {format_bps(completion.ADVANCE_MAX_BPS)}% of the contract value."
        )
    if not errors and s.evidence_max_file_mb > s.evidence_max_submission_mb:
        errors["evidence_max_file_mb"] = "The largest file cannot be larger than the largest submission."
    if errors:
        raise ValidationError(errors)


# Settings a caller may leave out (None): the organization keeps what it has.
_KEPT_WHEN_NONE = frozenset(
    {
        "review_sla_days",
        "locale",
        "stripe_rail_enabled",
        "tax_form_required",
        "advances_enabled",
        "default_advance_bps",
    }
)


def update_settings(session: Session, actor: Actor, new: OrgSettings) -> Organization:
    """Change the organization's settings; the audit event keeps each changed field's before and after."""
    actor.require(Role.ADMIN)
    validate_settings(new)
    with unit_of_work(session):
        org = current_organization(session, actor)
        changes = {}
        for field in (
            "name",
            "default_currency",
            "default_retainage_bps",
            "payment_terms_days",
            "partial_policy",
            *EVIDENCE_LIMITS,
            "invoice_prefix",
            "segregation_of_duties",
            "review_sla_days",
            "locale",
            "stripe_rail_enabled",
            "tax_form_required",
            "advances_enabled",
            "default_advance_bps",
        ):
            before, after = getattr(org, field), getattr(new, field)
            if field in _KEPT_WHEN_NONE and after is None:
                continue
            if field == "name":
                after = after.strip()
            if field == "invoice_prefix":
                if after is None:
                    continue
                after = after.strip().upper()
            if before != after:
                changes[field] = {"before": before, "after": after}
                setattr(org, field, after)
        # Automatic payment goes out in the name of the admin who turns it on (the database holds it to that).
        if new.auto_pay_enabled is not None and new.auto_pay_enabled != org.auto_pay_enabled:
            changes["auto_pay_enabled"] = {"before": org.auto_pay_enabled, "after": new.auto_pay_enabled}
            org.auto_pay_enabled = new.auto_pay_enabled
            org.auto_pay_by = actor.user_id if new.auto_pay_enabled else None
        if changes:
            session.flush()
            audit.record(session, actor, "organization.settings_changed", "organization", org.id, changes)
    return org


def update_export_settings(session: Session, actor: Actor, new: ExportSettings) -> Organization:
    """Change the AP export layout. The custom columns are validated even when a preset is chosen, so
    what is saved can always be switched to. Batches already written keep the layout they were made with."""
    actor.require(Role.ADMIN)
    errors: dict[str, str] = {}
    try:
        preset = Preset(new.preset)
    except ValueError:
        errors["preset"] = "Choose an export layout."
        preset = None
    account = clean_text(
        new.expense_account, "expense_account", errors, label="expense account", required=True, max_len=100
    )
    layout = None
    if new.date_format not in DATE_FORMATS:
        errors["date_format"] = "Choose a date format."
    elif new.columns or preset == Preset.CUSTOM:
        try:
            layout = custom_layout(new.columns, new.date_format)
        except ValueError as exc:
            errors["columns"] = str(exc)
    if errors:
        raise ValidationError(errors)
    with unit_of_work(session):
        org = current_organization(session, actor)
        columns = layout.as_json()["columns"] if layout else org.ap_export_columns
        changes = {}
        for field, after in (
            ("ap_export_preset", preset.value),
            ("ap_expense_account", account),
            ("ap_export_date_format", new.date_format),
            ("ap_export_columns", columns),
            ("ap_export_bom", org.ap_export_bom if new.bom is None else bool(new.bom)),
        ):
            if getattr(org, field) != after:
                changes[field] = {"before": getattr(org, field), "after": after}
                setattr(org, field, after)
        if changes:
            session.flush()
            audit.record(session, actor, "organization.export_layout_changed", "organization", org.id, changes)
    return org
