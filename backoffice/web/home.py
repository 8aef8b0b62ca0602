"""The landing page: what this person can do next, by role, with the figures of their lists."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user, login_required

from backoffice.domain.roles import MANAGERS, Role
from backoffice.queries import admin as admin_queries
from backoffice.queries import completion as completion_queries
from backoffice.queries import dashboards
from backoffice.queries import home as home_queries
from backoffice.queries import proposals as proposal_queries
from backoffice.queries import reviews as review_queries
from backoffice.queries import self_billing as self_billing_queries
from backoffice.queries import tax as tax_queries
from backoffice.web.charts import BarChart, bar_chart
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
    figures: dict = {}
    if actor.role in MANAGERS or actor.role == Role.FINANCE:
        today = dashboards.today_in_db(db())
    if actor.role in MANAGERS:
        reviews = dashboards.review_figures(db(), actor)
        waiting = reviews.waiting
        figures |= dict(
            reviews=reviews,
            due=dashboards.due_figures(db(), actor, today),
            commitments=dashboards.commitments(db(), actor),
        )
    if actor.role == Role.FINANCE:
        finance = dashboards.finance_figures(db(), today)
        figures |= dict(finance=finance, charts=[_cash_out_chart(c) for c in finance.cash_out])
    if actor.role == Role.ADMIN:
        figures |= dict(admin=dashboards.admin_figures(db(), actor))
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
        due_cap=dashboards.DUE_CAP,
        mine=mine,
        invoiceable=invoiceable,
        tax_block=tax_block,
        open_projects=open_projects,
        agreement=agreement,
        to_answer=to_answer,
        **figures,
    )


def _cash_out_chart(cash_out: dashboards.CashOut) -> BarChart:
    def label(n: int, bar: dashboards.WeekBar) -> tuple[str, str]:
        if bar.starts is None:
            return bar.label, ""
        if n == 1:  # this week: from today, so it is named by its end
            return bar.label, f"to {cash_out.week_end.day} {cash_out.week_end:%b}"
        return f"{bar.starts.day} {bar.starts:%b}", ""

    return bar_chart(
        f"cash-out-{cash_out.currency.lower()}",
        f"Cash out by week, {cash_out.currency}: net amounts due",
        cash_out.currency,
        [(*label(n, bar), bar.net_minor) for n, bar in enumerate(cash_out.bars)],
        emphasise_first=True,
    )
