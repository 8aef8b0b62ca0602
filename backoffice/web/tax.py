"""Tax forms and the 1099-NEC year end (issue 18, items 5 and 6): a contractor's user fills in its W-9 or W-8;
finance and admins read each year's 1099-NEC figures, export the file (which locks the year) and reopen a year
with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, flash, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.domain.tax import CLASSIFICATIONS, FIRST_NEC_YEAR, FormKind, TinType, mask_tin
from backoffice.errors import DomainError, ValidationError
from backoffice.queries import tax as queries
from backoffice.services import tax_profiles, year_end
from backoffice.web.context import actor, db, roles_required
from backoffice.web.forms import apply_errors
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("tax", __name__, url_prefix="/tax")


@dataclass(frozen=True)
class TaxStatusView:
    """What tax/_status.html shows of a contractor's tax form: finance and admins the form, its completeness and
    the TIN's last four; anyone else on staff (a project owner) only whether a complete form is on file."""

    detailed: bool
    required: bool
    on_file: bool
    problem: str | None
    kind_label: str | None = None
    tin_shown: str | None = None
    certified_at: datetime | None = None


def tax_status_view(contractor_id) -> TaxStatusView | None:
    me = actor()
    state = queries.tax_form_states(db(), [contractor_id]).get(contractor_id)
    if state is None:
        return None
    if me.role not in FINANCE_ROLES:
        return TaxStatusView(False, state.required, state.on_file, None)
    profile = queries.profile_of(db(), contractor_id)
    return TaxStatusView(
        True,
        state.required,
        state.on_file,
        state.problem,
        FormKind(profile.kind).label if profile else None,
        f"{profile.tin_type.upper()} {mask_tin(profile.tin_last4)}" if profile and profile.tin_last4 else None,
        profile.certified_at if profile else None,
    )


class TaxForm(FlaskForm):
    kind = RadioField(
        "Which form do you file?",
        choices=[
            SelectChoice(FormKind.W9.value, "W-9: a US person (US citizen or resident, US company)"),
            SelectChoice(FormKind.W8BEN.value, "W-8BEN: a foreign individual"),
            SelectChoice(FormKind.W8BEN_E.value, "W-8BEN-E: a foreign company or other entity"),
        ],
        validate_choice=False,
    )
    name = StringField("Name (as shown on your income tax return)")
    business_name = StringField("Business name or disregarded entity name (optional)")
    classification = SelectField(
        "Federal tax classification (W-9 only)",
        choices=[SelectChoice("", "— choose —")] + [SelectChoice(k, v) for k, v in CLASSIFICATIONS.items()],
        validate_choice=False,
    )
    tin_type = RadioField(
        "Taxpayer identification number (W-9 only)",
        choices=[SelectChoice(t.value, t.label) for t in TinType],
        validate_choice=False,
    )
    tin = StringField("SSN or EIN")
    address_line1 = StringField("Street address")
    address_line2 = StringField("Apartment, suite, unit (optional)")
    city = StringField("City")
    region = StringField("State (W-9) or state / province")
    postal_code = StringField("ZIP code (W-9) or postal code")
    country = StringField("Country of residence (W-8 only, two letters: DE, GB, IN …)")
    certify = BooleanField(
        "Under penalties of perjury, I certify that the information on this form is correct and that I am authorized"
        " to sign it for this contractor."
    )

    def to_input(self) -> tax_profiles.TaxFormInput:
        return tax_profiles.TaxFormInput(
            kind=self.kind.data or "",
            name=self.name.data or "",
            business_name=self.business_name.data or "",
            classification=self.classification.data or "",
            tin_type=self.tin_type.data or "",
            tin=self.tin.data or "",
            address_line1=self.address_line1.data or "",
            address_line2=self.address_line2.data or "",
            city=self.city.data or "",
            region=self.region.data or "",
            postal_code=self.postal_code.data or "",
            country=self.country.data or "",
            certify=bool(self.certify.data),
        )


def _form_page(form: TaxForm, status: int = 200):
    me = actor()
    profile = queries.profile_of(db(), me.contractor_id)
    state = queries.tax_form_states(db(), [me.contractor_id]).get(me.contractor_id)
    return render(
        "tax/form.html",
        form=form,
        profile=profile,
        state=state,
        tin_shown=mask_tin(profile.tin_last4 if profile else None),
        kind_label=FormKind(profile.kind).label if profile else None,
        status=status,
    )


@bp.route("/form", methods=["GET", "POST"])
@roles_required(Role.CONTRACTOR)
def form():
    """The contractor's own tax form: a W-9 or a W-8. The TIN is never shown again, only its last four digits."""
    if request.method == "GET":
        profile = queries.profile_of(db(), actor().contractor_id)
        tax_form = TaxForm(formdata=None, obj=profile) if profile else TaxForm(formdata=None, kind=FormKind.W9.value)
        tax_form.tin.data = ""
        tax_form.certify.data = False
        return _form_page(tax_form)
    tax_form = TaxForm()
    try:
        tax_profiles.save_profile(db(), actor(), tax_form.to_input(), key=current_app.config["TAX_ID_KEY"])
    except ValidationError as exc:
        apply_errors(tax_form, exc)
        tax_form.tin.data = ""  # never sent back to the browser
        return _form_page(tax_form, status=422)
    flash("Tax form saved. Thank you: nothing more is needed from you for it.", "success")
    return redirect_after_post(url_for("tax.form"))


# --- the 1099-NEC year end ----------------------------------------------------------------------------------


def _default_year() -> int:
    """The year finance is most likely closing: the last one until April (1099s are due at the end of January),
    this one after."""
    today = datetime.now(UTC).date()
    return today.year - 1 if today.month < 4 else today.year


@bp.route("/year-end")
@roles_required(*FINANCE_ROLES)
def year_end_page():
    raw = request.args.get("year") or str(_default_year())
    try:
        year = year_end.clean_year(raw)
    except ValidationError:
        flash(f"There is no 1099-NEC year {raw[:8]!r}: choose one from {FIRST_NEC_YEAR} on.", "error")
        year = _default_year()
    return _year_page(year)


def _year_page(year: int, *, reason_error: str | None = None, reason: str = "", status: int = 200):
    this_year = datetime.now(UTC).date().year
    return render(
        "tax/year_end.html",
        ye=queries.year_end(db(), year),
        years=list(range(max(this_year, year), FIRST_NEC_YEAR - 1, -1)),
        reason_error=reason_error,
        reason=reason,
        status=status,
    )


@bp.route("/year-end/<int:year>/export", methods=["POST"])
@roles_required(*FINANCE_ROLES)
def export(year):
    try:
        filing = year_end.export_year(db(), actor(), year, key=current_app.config["TAX_ID_KEY"])
    except DomainError as exc:
        if exc.status == 404:
            raise
        message = " ".join(exc.fields.values()) if isinstance(exc, ValidationError) else exc.message
        flash(f"Nothing was exported: {message}", "error")
        return redirect_after_post(url_for("tax.year_end_page", year=year))
    flash(
        f"{year} is exported and locked: {filing.row_count} recipient{'' if filing.row_count == 1 else 's'}. Download"
        " the file below; it stays the same file until the year is reopened.",
        "success",
    )
    return redirect_after_post(url_for("tax.year_end_page", year=year))


@bp.route("/year-end/<int:year>/reopen", methods=["POST"])
@roles_required(*FINANCE_ROLES)
def reopen(year):
    reason = request.form.get("reason", "")
    try:
        year_end.reopen_year(db(), actor(), year, reason)
    except ValidationError as exc:
        return _year_page(year, reason_error=" ".join(exc.fields.values()), reason=reason, status=422)
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect_after_post(url_for("tax.year_end_page", year=year))
    flash(f"{year} is reopened. Export it again when the figures are right.", "success")
    return redirect_after_post(url_for("tax.year_end_page", year=year))


@bp.route("/year-end/filings/<filing_id>")
@roles_required(*FINANCE_ROLES)
def filing_file(filing_id):
    filing = year_end.filing_file(db(), actor(), filing_id)
    response = Response(bytes(filing.content), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filing.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
