"""E-invoicing details (issue 21, item 1): the organization's own (Settings → E-invoicing, with the acceptance
settings), each contractor's (for finance and admins), and the contractor's own user's "My e-invoicing details".
Each form says in words what is still missing for e-invoicing."""

from __future__ import annotations

from dataclasses import dataclass

from babel import Locale
from flask import Blueprint, abort, flash, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from backoffice.domain.countries import COUNTRY_CODES
from backoffice.domain.einvoice import ENDPOINT_SCHEMES, VatCategory
from backoffice.domain.percent import format_bps
from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.domain.self_billing import ACCEPTANCE_DAYS_RANGE
from backoffice.errors import ValidationError
from backoffice.models import EInvoiceProfile
from backoffice.queries import admin as admin_queries
from backoffice.services import contractors as contractor_service
from backoffice.services import einvoice_profiles as profiles
from backoffice.services import organizations as org_service
from backoffice.web.context import actor, db, roles_required
from backoffice.web.forms import LongSelect, apply_errors
from backoffice.web.htmx import redirect_after_post, render
from backoffice.web.self_billing import read_only_agreement

bp = Blueprint("einvoicing", __name__)

HERE = "these details"  # where a contractor's form tells its reader to fix what it lacks: beside the note


def _country_names() -> dict[str, str]:
    names = Locale("en").territories
    # Babel has no name for XI, EN 16931's code for Northern Ireland (its VAT numbers start XI).
    found = {code: names.get(code, "Northern Ireland" if code == "XI" else code) for code in COUNTRY_CODES}
    return dict(sorted(found.items(), key=lambda item: item[1]))


COUNTRIES = _country_names()
TAX_SCHEMES = {"VAT": "VAT number", "TAX": "Other tax id"}


def endpoint_words(code: str) -> str:
    return f"{code} — {ENDPOINT_SCHEMES[code]}" if code in ENDPOINT_SCHEMES else code


class Words:
    """A stored profile's codes as the pages say them."""

    @staticmethod
    def country(code: str) -> str:
        return COUNTRIES.get(code, code)

    @staticmethod
    def tax_scheme(code: str) -> str:
        return TAX_SCHEMES.get(code, code)

    @staticmethod
    def endpoint(code: str) -> str:
        return endpoint_words(code)

    @staticmethod
    def vat(profile: EInvoiceProfile) -> str:
        if not profile.vat_category:
            return ""
        label = VatCategory(profile.vat_category).label
        return f"{label}, {format_bps(profile.vat_bps)}%" if profile.vat_category == VatCategory.STANDARD else label


class ProfileForm(FlaskForm):
    legal_name = StringField("Legal name")
    street = StringField("Street address")
    city = StringField("City")
    postal_code = StringField("Postal code")
    country = SelectField(
        "Country",
        choices=[SelectChoice("", "— choose —")] + [SelectChoice(code, name) for code, name in COUNTRIES.items()],
        validate_choice=False,
        widget=LongSelect(),
    )
    tax_scheme = SelectField(
        "Kind of tax id", choices=[SelectChoice(k, v) for k, v in TAX_SCHEMES.items()], validate_choice=False
    )
    tax_id = StringField("VAT number or tax id")
    endpoint_scheme = SelectField(
        "Peppol endpoint scheme",
        choices=[SelectChoice("", "— no Peppol endpoint yet —")]
        + [SelectChoice(code, endpoint_words(code)) for code in ENDPOINT_SCHEMES],
        validate_choice=False,
        widget=LongSelect(),
    )
    endpoint_id = StringField("Peppol endpoint id")
    vat_category = SelectField(
        "VAT category",
        choices=[SelectChoice("", "— choose —")] + [SelectChoice(c.value, c.label) for c in VatCategory],
        validate_choice=False,
    )
    vat_rate = StringField("VAT rate (%)")

    def to_input(self, *, seller: bool) -> profiles.ProfileInput:
        return profiles.ProfileInput(
            legal_name=self.legal_name.data or "",
            street=self.street.data or "",
            city=self.city.data or "",
            postal_code=self.postal_code.data or "",
            country=self.country.data or "",
            tax_id=self.tax_id.data or "",
            tax_scheme=self.tax_scheme.data or "",
            endpoint_scheme=self.endpoint_scheme.data or "",
            endpoint_id=self.endpoint_id.data or "",
            # The organization's own form has no VAT fields: whatever else is posted is not its to set.
            vat_category=(self.vat_category.data or "") if seller else "",
            vat_rate=(self.vat_rate.data or "") if seller else "",
        )


def _profile_form(profile: EInvoiceProfile | None, legal_name: str) -> ProfileForm:
    """The form as stored; a party with no profile yet starts from its name in the app."""
    if profile is None:
        return ProfileForm(formdata=None, legal_name=legal_name, tax_scheme="VAT")
    form = ProfileForm(formdata=None, obj=profile)
    form.vat_rate.data = format_bps(profile.vat_bps) if profile.vat_category == VatCategory.STANDARD else ""
    return form


class AcceptanceForm(FlaskForm):
    acceptance_days = StringField("Days of silence that count as acceptance")
    acceptance_required = BooleanField("Require the contractor's acceptance before payment")


# --- the organization's: Settings → E-invoicing ---------------------------------------------------------------


@bp.route("/settings/e-invoicing")
@roles_required(*FINANCE_ROLES)
def settings():
    """Admins edit the organization's details and the acceptance settings; finance reads them."""
    org = org_service.current_organization(db(), actor())
    profile = profiles.profile_of(db(), None)
    acceptance = AcceptanceForm(
        formdata=None, acceptance_days=str(org.acceptance_days), acceptance_required=org.acceptance_required
    )
    return _settings_page(org, profile, _profile_form(profile, org.name), acceptance)


def _settings_page(org, profile, form, acceptance, status: int = 200):
    return render(
        "einvoicing/settings.html",
        org=org,
        profile=profile,
        form=form,
        acceptance=acceptance,
        editable=actor().role == Role.ADMIN,
        missing=profiles.missing_for_einvoicing(profile, seller=False),
        days_range=ACCEPTANCE_DAYS_RANGE,
        words=Words(),
        status=status,
    )


@bp.route("/settings/e-invoicing", methods=["POST"])
@roles_required(Role.ADMIN)
def save_org():
    form = ProfileForm()
    try:
        profiles.save_org_profile(db(), actor(), form.to_input(seller=False))
    except ValidationError as exc:
        apply_errors(form, exc)
        org = org_service.current_organization(db(), actor())
        acceptance = AcceptanceForm(
            formdata=None, acceptance_days=str(org.acceptance_days), acceptance_required=org.acceptance_required
        )
        return _settings_page(org, profiles.profile_of(db(), None), form, acceptance, status=422)
    flash("The organization's e-invoicing details are saved.", "success")
    return redirect_after_post(url_for("einvoicing.settings"))


@bp.route("/settings/e-invoicing/acceptance", methods=["POST"])
@roles_required(Role.ADMIN)
def save_acceptance():
    form = AcceptanceForm()
    try:
        profiles.update_acceptance_settings(
            db(), actor(), form.acceptance_days.data or "", bool(form.acceptance_required.data)
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        org = org_service.current_organization(db(), actor())
        profile = profiles.profile_of(db(), None)
        return _settings_page(org, profile, _profile_form(profile, org.name), form, status=422)
    flash("Acceptance settings saved.", "success")
    return redirect_after_post(url_for("einvoicing.settings"))


# --- the contractors' ---------------------------------------------------------------------------------------


@bp.route("/e-invoicing/contractors")
@roles_required(*FINANCE_ROLES)
def contractors():
    """Each contractor and what its e-invoicing details still lack, fifty to a page."""
    page = admin_queries.contractors(
        db(), admin_queries.CONTRACTORS_KEYSET.read(request.args.get("after"), request.args.get("before"))
    )
    found = profiles.profiles_of(db(), [row.id for row in page.rows])
    missing = {row.id: profiles.missing_for_einvoicing(found.get(row.id), seller=True) for row in page.rows}
    return render("einvoicing/contractors.html", page=page, missing=missing)


@dataclass(frozen=True)
class StatusView:
    """What a contractor's page shows of its e-invoicing details (einvoicing/_status.html)."""

    contractor_id: object
    saved: bool
    missing: list[str]
    notes: list[str]


def status_view(contractor_id) -> StatusView:
    profile = profiles.profile_of(db(), contractor_id)
    seller_who = "its e-invoicing details"
    return StatusView(
        contractor_id,
        profile is not None,
        profiles.missing_for_einvoicing(profile, seller=True),
        profiles.vat_notes(db(), profile, seller_who),
    )


@bp.route("/contractors/<contractor_id>/e-invoicing", methods=["GET", "POST"])
@roles_required(*FINANCE_ROLES)
def contractor(contractor_id):
    record = contractor_service.get_contractor(db(), contractor_id)
    return _contractor_form(record, mine=False)


@bp.route("/e-invoicing", methods=["GET", "POST"])
@roles_required(Role.CONTRACTOR)
def mine():
    """The contractor's own user keeps its e-invoicing details, and reads the organization's."""
    me = actor()
    if me.contractor_id is None:
        abort(404)
    record = contractor_service.get_contractor(db(), me.contractor_id)
    return _contractor_form(record, mine=True)


def _contractor_form(record, *, mine: bool):
    here = url_for("einvoicing.mine") if mine else url_for("einvoicing.contractor", contractor_id=record.id)
    if request.method == "GET":
        profile = profiles.profile_of(db(), record.id)
        return _contractor_page(record, profile, _profile_form(profile, record.legal_name), mine=mine, here=here)
    form = ProfileForm()
    try:
        profiles.save_contractor_profile(db(), actor(), record.id, form.to_input(seller=True))
    except ValidationError as exc:
        apply_errors(form, exc)
        profile = profiles.profile_of(db(), record.id)
        return _contractor_page(record, profile, form, mine=mine, here=here, status=422)
    flash(
        "Your e-invoicing details are saved." if mine else f"{record.legal_name}'s e-invoicing details are saved.",
        "success",
    )
    return redirect_after_post(here)


def _contractor_page(record, profile, form, *, mine: bool, here: str, status: int = 200):
    return render(
        "einvoicing/contractor.html",
        contractor=record,
        profile=profile,
        form=form,
        mine=mine,
        action=here,
        missing=profiles.missing_for_einvoicing(profile, seller=True),
        notes=profiles.vat_notes(db(), profile, HERE),
        org_profile=profiles.profile_of(db(), None) if mine else None,
        contractor_page=url_for("admin.contractor", contractor_id=record.id) if actor().role == Role.ADMIN else None,
        # Finance reads the agreement here (the contractor's admin page, where admins record one, is theirs alone).
        self_billing=read_only_agreement(record) if actor().role == Role.FINANCE else None,
        words=Words(),
        status=status,
    )
