"""Sign in, sign out, switch organization, accept an invite."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask import session as cookie
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField

from backoffice.db import presented_sign_in
from backoffice.errors import ValidationError
from backoffice.services import auth as auth_service
from backoffice.services import password_resets
from backoffice.web.context import SignedIn, db
from backoffice.web.forms import apply_errors
from backoffice.web.htmx import render

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField("Email")
    password = PasswordField("Password")
    next = HiddenField()


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password")
    confirm = PasswordField("Repeat the password")


_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an open redirect. Browsers and Werkzeug drop tabs, newlines and
    read backslashes as slashes, so '/\t/evil.example' would become '//evil.example': refuse all of them."""
    if not target or _UNSAFE_IN_NEXT.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        return render("auth/login.html", form=form)
    try:
        sign_in = auth_service.authenticate(db(), form.email.data or "", form.password.data or "")
    except auth_service.LoginLocked as exc:
        form.email.errors = [exc.message]
        return render("auth/login.html", form=form, status=429)
    except auth_service.LoginFailed as exc:
        form.password.errors = [exc.message]
        return render("auth/login.html", form=form, status=401)
    return _sign_in(sign_in, safe_next(form.next.data))


def _sign_in(
    sign_in: auth_service.SignIn,
    next_url: str | None = None,
    org_id: uuid.UUID | None = None,
    welcome: str | None = None,
):
    cookie.clear()  # a fresh session on sign-in: nothing from before survives (session fixation)
    if welcome:
        flash(welcome, "success")
    actor = auth_service.start_session(db(), sign_in, org_id)
    cookie["sign_in"] = sign_in.token  # the database's sign-in session: every request presents it
    login_user(SignedIn(user_id=sign_in.user_id, actor=actor))
    if actor is None:
        flash("You are not a member of any organization yet. Ask an admin to invite you.", "warning")
    else:
        cookie["org_id"] = str(actor.org_id)
    return redirect(next_url or url_for("home.index"), code=303)


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        auth_service.sign_out(db(), current_user.user_id, current_user.actor)
    logout_user()
    cookie.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/orgs/switch", methods=["POST"])
@login_required
def switch_org():
    try:
        org_id = uuid.UUID(request.form.get("org_id", ""))
    except ValueError:
        abort(404)
    actor = auth_service.switch_organization(db(), current_user.user_id, org_id)
    if actor is None:
        abort(404)
    cookie["org_id"] = str(actor.org_id)
    flash(f"You are now working in this organization as {actor.role.label.lower()}.", "info")
    return redirect(url_for("home.index"), code=303)


class JoinForm(FlaskForm):
    password = PasswordField("Your password")


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    """One link, two cases: a new person sets a password; someone who already has an account (with
    another organization) signs in with it. Either way the membership starts only now."""
    details = auth_service.invite_details(db(), token)
    if details is None:
        return render("auth/invite_invalid.html", status=404)
    form = JoinForm() if details.has_password else SetPasswordForm()
    page = "auth/join.html" if details.has_password else "auth/set_password.html"
    if request.method == "GET":
        return render(page, form=form, invite=details)
    try:
        if details.has_password:
            actor = auth_service.accept_invite_with_existing_password(db(), token, form.password.data or "")
        else:
            actor = auth_service.accept_invite_with_new_password(
                db(), token, form.password.data or "", form.confirm.data or ""
            )
    except (auth_service.LoginFailed, auth_service.LoginLocked) as exc:
        form.password.errors = [exc.message]
        return render(page, form=form, invite=details, status=exc.status)
    except ValidationError as exc:
        apply_errors(form, exc)
        return render(page, form=form, invite=details, status=404 if "token" in exc.fields else 422)
    sign_in = auth_service.SignIn(actor.user_id, presented_sign_in(db()))  # accepting signed them in
    return _sign_in(sign_in, org_id=actor.org_id, welcome=f"Welcome to {details.org_name}.")


# --- forgotten passwords ----------------------------------------------------------------------------------


class ForgotForm(FlaskForm):
    email = EmailField("Email")


FORGOT_SENT = (
    "If that address has a backoffice account, a link to choose a new password is on its way. "
    "It works once, for one hour."
)


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    """Ask for a reset link. The answer is the same whether or not the address has an account."""
    form = ForgotForm()
    if request.method == "GET":
        return render("auth/forgot.html", form=form)
    try:
        password_resets.request_reset(db(), form.email.data or "")
    except ValidationError as exc:
        apply_errors(form, exc)
        return render("auth/forgot.html", form=form, status=422)
    flash(FORGOT_SENT, "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    email = password_resets.reset_email(db(), token)
    if email is None:
        return render("auth/reset_invalid.html", form=ForgotForm(), status=404)
    form = SetPasswordForm()
    if request.method == "GET":
        return render("auth/reset.html", form=form, email=email, token=token)
    try:
        password_resets.finish_reset(db(), token, form.password.data or "", form.confirm.data or "")
    except ValidationError as exc:
        if "token" in exc.fields:
            return render("auth/reset_invalid.html", form=ForgotForm(), status=404)
        apply_errors(form, exc)
        return render("auth/reset.html", form=form, email=email, token=token, status=422)
    flash("Your password is changed, and every other session is signed out. Sign in with the new password.", "success")
    return redirect(url_for("auth.login"), code=303)
