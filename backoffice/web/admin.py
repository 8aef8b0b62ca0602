"""Admin pages: organization settings, users and roles, contractors."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask import session as cookie
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from backoffice.domain import evidence as evidence_rules
from backoffice.domain.ap_export import DATE_FORMATS, FIELDS, PRESETS, Preset
from backoffice.domain.completion import ADVANCE_MAX_BPS
from backoffice.domain.currency import COMMON, MINOR_UNITS
from backoffice.domain.percent import format_bps
from backoffice.domain.roles import Role
from backoffice.errors import NotFound, ValidationError
from backoffice.formatting import COMMON_LOCALES, locale_name
from backoffice.queries import admin as queries
from backoffice.queries import engagements as engagement_queries
from backoffice.services import contractors as contractor_service
from backoffice.services import members as member_service
from backoffice.services import organizations as org_service
from backoffice.services.stripe_rail import NOT_CONFIGURED
from backoffice.services.validation import clean_days, clean_percent, clean_whole_number, parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.einvoicing import status_view as einvoice_status_view
from backoffice.web.forms import LongSelect, apply_errors
from backoffice.web.htmx import render
from backoffice.web.payouts import payout_view, with_onboarding
from backoffice.web.self_billing import agreement_section
from backoffice.web.tax import tax_status_view

bp = Blueprint("admin", __name__, url_prefix="/admin")

ROLE_CHOICES = [SelectChoice(r.value, r.label) for r in Role]
CURRENCY_CHOICES = [SelectChoice(c) for c in COMMON] + [SelectChoice(c) for c in sorted(MINOR_UNITS) if c not in COMMON]


class SettingsForm(FlaskForm):
    name = StringField("Organization name")
    default_currency = SelectField("Default currency", choices=CURRENCY_CHOICES)
    default_retainage = StringField("Default retainage (%)")
    payment_terms_days = StringField("Payment terms (days after approval)")
    partial_policy = RadioField(
        "When an owner approves only part of a milestone",
        choices=[
            SelectChoice(
                "split",
                "Pay the approved part: it is approved and paid like any approval, and the rest becomes a new"
                " milestone for the contractor to deliver (shown as “Partly approved”)",
            ),
            SelectChoice(
                "route_back",
                "Pay nothing yet: send the whole milestone back to the contractor with your reason, to change and"
                " submit again (shown as “Changes requested”)",
            ),
        ],
    )
    evidence_max_files = StringField("Files per submission")
    evidence_max_file_mb = StringField("Largest file (MB)")
    evidence_max_submission_mb = StringField("Largest submission (MB)")
    invoice_prefix = StringField("Invoice number prefix")
    segregation_of_duties = BooleanField(
        "Segregation of duties: whoever approved a milestone cannot record its payment"
    )
    review_sla_days = StringField("Review time (days)")
    stripe_rail_enabled = BooleanField("Pay contractors through Stripe Connect")
    auto_pay_enabled = BooleanField("Pay automatically on the due date, by Stripe")
    tax_form_required = BooleanField("Require a complete tax form (W-9 or W-8) before a contractor is paid")
    advances_enabled = BooleanField("Advances on completion billing")
    default_advance = StringField("Default advance (%)")
    locale = SelectField(
        "Amounts and dates in emails and receipts",
        choices=[SelectChoice(code, locale_name(code)) for code in COMMON_LOCALES],
    )

    def to_settings(self) -> org_service.OrgSettings:
        errors: dict[str, str] = {}
        bps = clean_percent(self.default_retainage.data, "default_retainage", errors)
        days = clean_days(self.payment_terms_days.data, "payment_terms_days", errors)
        limits = {
            name: clean_whole_number(getattr(self, name).data, name, errors, maximum=maximum, label=label)
            for name, maximum, label in (
                ("evidence_max_files", evidence_rules.MAX_FILES, "files"),
                ("evidence_max_file_mb", evidence_rules.MAX_FILE_MB, "MB"),
                ("evidence_max_submission_mb", evidence_rules.MAX_SUBMISSION_MB, "MB"),
            )
        }
        sla = (
            clean_whole_number(
                self.review_sla_days.data,
                "review_sla_days",
                errors,
                maximum=org_service.MAX_REVIEW_SLA_DAYS,
                label="days",
            )
            if self.review_sla_days.data is not None
            else None
        )
        # The advance's fields come together; a form without them (an older page, a script) keeps both as they are.
        advances_posted = self.default_advance.raw_data is not None and len(self.default_advance.raw_data) > 0
        advance_bps = clean_percent(self.default_advance.data, "default_advance", errors) if advances_posted else None
        if errors:
            raise ValidationError(errors)
        return org_service.OrgSettings(
            name=self.name.data or "",
            default_currency=self.default_currency.data or "",
            default_retainage_bps=bps,
            payment_terms_days=days,
            partial_policy=self.partial_policy.data or "",
            **limits,
            invoice_prefix=self.invoice_prefix.data,  # None (not sent) keeps the current prefix
            segregation_of_duties=bool(self.segregation_of_duties.data),
            review_sla_days=sla,
            locale=self.locale.data if self.locale.raw_data else None,
            stripe_rail_enabled=bool(self.stripe_rail_enabled.data),
            auto_pay_enabled=bool(self.auto_pay_enabled.data),
            tax_form_required=bool(self.tax_form_required.data),
            advances_enabled=bool(self.advances_enabled.data) if advances_posted else None,
            default_advance_bps=advance_bps,
        )


class InviteForm(FlaskForm):
    email = EmailField("Email")
    name = StringField("Full name")
    role = SelectField("Role", choices=ROLE_CHOICES, default="owner")
    contractor_id = SelectField(
        "Contractor (for contractor users)", choices=[], validate_choice=False, widget=LongSelect()
    )


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
    contractor_id = SelectField("Contractor", choices=[], validate_choice=False, widget=LongSelect())


class ContractorForm(FlaskForm):
    legal_name = StringField("Legal name")
    email = EmailField("Billing email")
    ap_vendor_id = StringField("AP vendor id (optional)")
    payout_details = TextAreaField("Payout details (optional)")

    def to_input(self) -> contractor_service.ContractorInput:
        return contractor_service.ContractorInput(
            self.legal_name.data or "",
            self.email.data or "",
            self.ap_vendor_id.data or "",
            self.payout_details.data or "",
        )


class ContractorUserForm(FlaskForm):
    # Own ids: the contractor's details form on the same page has an "email" field too, and a label must
    # name exactly one control.
    email = EmailField("Email", id="user-email")
    name = StringField("Full name", id="user-name")


def _contractor_choices():
    return [SelectChoice("", "— not a contractor user —")] + [
        SelectChoice(str(c.id), c.name) for c in engagement_queries.contractor_choices(db())
    ]


# --- settings --------------------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def settings():
    org = org_service.current_organization(db(), actor())
    form = SettingsForm()
    if request.method == "GET":
        form.name.data = org.name
        form.default_currency.data = org.default_currency
        form.default_retainage.data = format_bps(org.default_retainage_bps)
        form.payment_terms_days.data = str(org.payment_terms_days)
        form.partial_policy.data = org.partial_policy
        for name in org_service.EVIDENCE_LIMITS:
            getattr(form, name).data = str(getattr(org, name))
        form.invoice_prefix.data = org.invoice_prefix
        form.segregation_of_duties.data = org.segregation_of_duties
        form.stripe_rail_enabled.data = org.stripe_rail_enabled
        form.auto_pay_enabled.data = org.auto_pay_enabled
        form.tax_form_required.data = org.tax_form_required
        form.advances_enabled.data = org.advances_enabled
        form.default_advance.data = format_bps(org.default_advance_bps)
        form.review_sla_days.data = str(org.review_sla_days)
        form.locale.data = org.locale
        if org.locale not in COMMON_LOCALES:
            form.locale.choices = [*form.locale.choices, SelectChoice(org.locale, locale_name(org.locale))]
        return _settings_page(form, org)
    try:
        org_service.update_settings(db(), actor(), form.to_settings())
    except ValidationError as exc:
        apply_errors(form, exc)
        return _settings_page(form, org, status=422)
    flash("Settings saved.", "success")
    return redirect(url_for("admin.settings"), code=303)


def _settings_page(form, org, status: int = 200):
    return render(
        "admin/settings.html",
        "admin/_settings_form.html",
        form=form,
        org=org,
        stripe=_stripe_note(),
        auto_pay_by=org_service.auto_pay_admin(db(), org),
        advance_max=format_bps(ADVANCE_MAX_BPS),
        status=status,
    )


def _stripe_note() -> str | None:
    """What to set when the server has no Stripe keys: the rail can be turned on, but pays nobody until then."""
    return None if current_app.config["BACKOFFICE_SETTINGS"].stripe_configured else NOT_CONFIGURED


@bp.route("/settings/export", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def export_settings():
    """The AP export layout: a preset, or custom columns picked, ordered and renamed, with a date format."""
    org = org_service.current_organization(db(), actor())
    if request.method == "GET":
        return render(
            "admin/export_settings.html",
            org=org,
            rows=_column_rows(org.ap_export_columns),
            errors={},
            values={
                "preset": org.ap_export_preset,
                "expense_account": org.ap_expense_account,
                "date_format": org.ap_export_date_format,
                "bom": org.ap_export_bom,
            },
            **_export_choices(),
        )
    form = request.form
    columns, rows = [], []
    for key, label in FIELDS.items():
        position = (form.get(f"position_{key}") or "").strip()
        header = form.get(f"header_{key}", "")
        included = bool(form.get(f"include_{key}"))
        rows.append({"field": key, "label": label, "included": included, "header": header, "position": position})
    for row in rows:
        if row["included"]:
            order = int(row["position"]) if re.fullmatch(r"[0-9]{1,3}", row["position"]) else 999
            columns.append((order, list(FIELDS).index(row["field"]), {"field": row["field"], "header": row["header"]}))
    columns = [c for _, _, c in sorted(columns, key=lambda c: (c[0], c[1]))]
    values = {k: form.get(k, "") for k in ("preset", "expense_account", "date_format")}
    values["bom"] = bool(form.get("bom"))  # an unticked box sends nothing
    try:
        org_service.update_export_settings(
            db(),
            actor(),
            org_service.ExportSettings(
                values["preset"], values["expense_account"], values["date_format"], columns, values["bom"]
            ),
        )
    except ValidationError as exc:
        return render(
            "admin/export_settings.html",
            status=422,
            org=org,
            rows=rows,
            errors=exc.fields,
            values=values,
            **_export_choices(),
        )
    flash("AP export layout saved. New batches use it; batches already exported keep their file.", "success")
    return redirect(url_for("admin.export_settings"), code=303)


def _export_choices() -> dict:
    return {
        "presets": list(Preset),
        "date_formats": {k: v[0] for k, v in DATE_FORMATS.items()},
        "preset_layouts": PRESETS,
    }


def _column_rows(saved: list) -> list[dict]:
    """One row per field for the custom-layout editor: saved columns first, in their order."""
    chosen = {c["field"]: (i + 1, c["header"]) for i, c in enumerate(saved or [])}
    rows = [
        {
            "field": key,
            "label": label,
            "included": key in chosen,
            "position": str(chosen[key][0]) if key in chosen else "",
            "header": chosen[key][1] if key in chosen else label,
        }
        for key, label in FIELDS.items()
    ]
    return sorted(rows, key=lambda r: (not r["included"], int(r["position"] or 0)))


# --- users and roles -------------------------------------------------------------------------------


def _members_page(invite_form=None, status=200):
    invite_form = invite_form or InviteForm(formdata=None)
    invite_form.contractor_id.choices = _contractor_choices()
    return render(
        "admin/members.html",
        page=queries.members_page(
            db(), queries.MEMBERS_KEYSET.read(request.args.get("after"), request.args.get("before"))
        ),
        invite_form=invite_form,
        **_invite_shown(),
        me=actor(),
        status=status,
    )


@bp.route("/members")
@roles_required(Role.ADMIN)
def members():
    return _members_page()


def _show_invite_link_once(token: str, to: str | None = None) -> None:
    # Carried across the redirect in the admin's own signed session and dropped when shown: a reload
    # neither re-posts the form nor shows the link again.
    cookie["invite_link"] = url_for("auth.accept_invite", token=token, _external=True)
    if to:
        cookie["invite_to"] = to


def _email_configured() -> bool:
    """Whether invitations go out by email (RESEND_API_KEY): without it they are kept in the outbox, and the
    page must say so and hand the admin the link to send themselves rather than claim it is on its way."""
    return current_app.config["BACKOFFICE_SETTINGS"].email_configured


def _invite_shown() -> dict:
    """What admin/_invite_link.html needs: the one-time link (shown once), to whom, and whether it was emailed."""
    return {
        "invite_link": cookie.pop("invite_link", None),
        "invite_to": cookie.pop("invite_to", None),
        "email_configured": _email_configured(),
    }


def _invited(email: str, extra: str = "") -> str:
    """The flash after an invitation: true to whether email is set up."""
    if _email_configured():
        return (
            f"We emailed the invitation to {email}{extra}. "
            "The link is below too; it works once and expires in 72 hours."
        )
    return (
        f"{email} is invited{extra}. Email is not set up, so send them the link below yourself; "
        "it works once and expires in 72 hours."
    )


@bp.route("/members", methods=["POST"])
@roles_required(Role.ADMIN)
def invite():
    form = InviteForm()
    try:
        result = member_service.invite_member(
            db(),
            actor(),
            email=form.email.data or "",
            name=form.name.data or "",
            role=form.role.data or "",
            contractor_id=form.contractor_id.data or None,
            base_url=current_app.config["BASE_URL"],
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        return _members_page(invite_form=form, status=422)
    if result.token:
        _show_invite_link_once(result.token, form.email.data)
        flash(_invited(form.email.data or ""), "success")
    else:
        flash(
            f"{form.email.data} already has a backoffice account: "
            "they can sign in to this organization with their own password.",
            "success",
        )
    return redirect(url_for("admin.members"), code=303)


def _member_action(action, success: str):
    """Run one action on a row of the members table: 303 back with a flash, or 422 with the reason."""
    try:
        action()
    except ValidationError as exc:
        for message in exc.fields.values():
            flash(message, "error")
        return _members_page(status=422)
    flash(success, "success")
    return redirect(url_for("admin.members"), code=303)


@bp.route("/members/<membership_id>")
@roles_required(Role.ADMIN)
def member_actions(membership_id):
    """One member's role form, new-link and removal buttons: the members table's menu fetches them when it
    opens (htmx), and this page shows them without JavaScript."""
    member = queries.member(db(), parse_id(membership_id))
    if member is None:
        raise NotFound()
    return render(
        "admin/member.html",
        "admin/_member_actions.html",
        m=member,
        role_choices=ROLE_CHOICES,
        contractor_choices=_contractor_choices(),
        me=actor(),
    )


@bp.route("/members/<membership_id>/role", methods=["POST"])
@roles_required(Role.ADMIN)
def change_role(membership_id):
    form = RoleForm()
    return _member_action(
        lambda: member_service.change_role(
            db(), actor(), membership_id, role=form.role.data or "", contractor_id=form.contractor_id.data or None
        ),
        "Role updated.",
    )


@bp.route("/members/<membership_id>/remove", methods=["POST"])
@roles_required(Role.ADMIN)
def remove_member(membership_id):
    return _member_action(
        lambda: member_service.remove_member(db(), actor(), membership_id), "Member removed from this organization."
    )


@bp.route("/members/<membership_id>/reinvite", methods=["POST"])
@roles_required(Role.ADMIN)
def reinvite(membership_id):
    return _member_action(
        lambda: _show_invite_link_once(
            member_service.reissue_invite(db(), actor(), membership_id, base_url=current_app.config["BASE_URL"])
        ),
        "A new link was created; earlier links no longer work. It expires in 72 hours."
        + (" We emailed it to them." if _email_configured() else " Email is not set up, so send it yourself."),
    )


# --- contractors -----------------------------------------------------------------------------------


@bp.route("/contractors")
@roles_required(Role.ADMIN)
def contractors():
    return render("admin/contractors.html", page=_contractors_page(), form=ContractorForm())


def _contractors_page():
    return queries.contractors(
        db(), queries.CONTRACTORS_KEYSET.read(request.args.get("after"), request.args.get("before"))
    )


@bp.route("/contractors", methods=["POST"])
@roles_required(Role.ADMIN)
def create_contractor():
    form = ContractorForm()
    try:
        contractor = contractor_service.create_contractor(db(), actor(), form.to_input())
    except ValidationError as exc:
        apply_errors(form, exc)
        return render("admin/contractors.html", page=_contractors_page(), form=form, status=422)
    flash(f"{contractor.legal_name} added. Invite their user below so they can submit work.", "success")
    return redirect(url_for("admin.contractor", contractor_id=contractor.id), code=303)


def contractor_page(contractor, form=None, user_form=None, status=200, agreement_form=None):
    """The admin's page of one contractor (also re-rendered with a form's errors at their fields: web/self_billing)."""
    if form is None:
        form = (
            ContractorForm(obj=contractor) if request.method == "GET" else ContractorForm(formdata=None, obj=contractor)
        )
    payout = payout_view(contractor.id)
    rendered = render(
        "admin/contractor.html",
        contractor=contractor,
        form=form,
        user_form=user_form or ContractorUserForm(formdata=None),
        users=queries.contractor_members(db(), contractor.id),
        **_invite_shown(),
        payout=payout,
        tax_status=tax_status_view(contractor.id),
        einvoice_status=einvoice_status_view(contractor.id),
        self_billing=agreement_section(contractor, agreement_form),
        status=status,
    )
    return with_onboarding(rendered, payout)


@bp.route("/contractors/<contractor_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def contractor(contractor_id):
    record = contractor_service.get_contractor(db(), contractor_id)
    if request.method == "GET":
        return contractor_page(record)
    form = ContractorForm()
    try:
        contractor_service.update_contractor(db(), actor(), record.id, form.to_input())
    except ValidationError as exc:
        apply_errors(form, exc)
        return contractor_page(contractor_service.get_contractor(db(), contractor_id), form=form, status=422)
    flash("Contractor saved.", "success")
    return redirect(url_for("admin.contractor", contractor_id=record.id), code=303)


@bp.route("/contractors/<contractor_id>/users", methods=["POST"])
@roles_required(Role.ADMIN)
def invite_contractor_user(contractor_id):
    record = contractor_service.get_contractor(db(), contractor_id)
    form = ContractorUserForm()
    try:
        result = member_service.invite_member(
            db(),
            actor(),
            email=form.email.data or "",
            name=form.name.data or "",
            role=Role.CONTRACTOR.value,
            contractor_id=record.id,
            base_url=current_app.config["BASE_URL"],
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        return contractor_page(contractor_service.get_contractor(db(), contractor_id), user_form=form, status=422)
    if result.token:
        _show_invite_link_once(result.token, form.email.data)
        flash(_invited(form.email.data or "", f" for {record.legal_name}"), "success")
    else:
        flash(
            f"{form.email.data} already has a backoffice account: "
            f"they can sign in for {record.legal_name} with their own password.",
            "success",
        )
    return redirect(url_for("admin.contractor", contractor_id=record.id), code=303)
