"""The landing page: what this person can do next, by role."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user, login_required

from backoffice.domain.roles import MANAGERS, Role
from backoffice.queries import admin as admin_queries
from backoffice.queries import completion as completion_queries
from backoffice.queries import home as home_queries
from backoffice.queries import proposals as proposal_queries
from backoffice.queries import reviews as review_queries
from backoffice.queries import self_billing as self_billing_queries
from backoffice.queries import tax as tax_queries
from backoffice.web.context import db
from backoffice.web.htmx import render

bp = Blueprint("home", __name__)


@bp.route("/")
@login_required
def index():
    actor = current_user.actor
    if actor is None:
        return render("home/no_org.html")
    overview = admin_queries.org_overview(db())
    waiting = mine = tax_block = agreement = None
    invoiceable = to_answer = []
    open_projects = 0
    if actor.role in MANAGERS:
        waiting = review_queries.queue_count(db(), actor)
    if actor.role == Role.CONTRACTOR:
        mine = home_queries.contractor_home(db(), actor.contractor_id)
        invoiceable = completion_queries.invoiceable_for_contractor(db(), actor.contractor_id)
        tax_block = tax_queries.tax_form_blocks(db(), [actor.contractor_id]).get(actor.contractor_id)
        open_projects = proposal_queries.open_count(db(), actor)
        agreement = self_billing_queries.agreement_of(db(), actor.contractor_id)
        to_answer = self_billing_queries.to_answer(db(), actor.contractor_id)
    return render(
        "home/index.html",
        actor=actor,
        overview=overview,
        waiting=waiting,
        cap=review_queries.COUNT_CAP,
        mine=mine,
        invoiceable=invoiceable,
        tax_block=tax_block,
        open_projects=open_projects,
        agreement=agreement,
        to_answer=to_answer,
    )
