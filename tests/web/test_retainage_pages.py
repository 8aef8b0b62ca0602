"""Retainage through the web (DESIGN.md section 4): the report of what each engagement and each contractor
has had withheld, released and still held; the release, authorized once per engagement on its page by
its project owner or an admin, after completion or earlier with a reason, as its own payment."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date

import pytest
from kit.engagements import perform
from kit.money_pages import active_engagement, approve, approve_milestones, invoice_row, milestone_ids, money_state
from kit.web import csrf_token, field_error, flashes, signed_in, table_row, textarea_value, visible_text
from sqlalchemy import text

from backoffice.db import make_session_factory
from backoffice.domain.roles import Role
from backoffice.services import bootstrap
from backoffice.web.display import short_day as format_day


def release(client, engagement_id, reason=""):
    token = csrf_token(client, f"/engagements/{engagement_id}")
    return client.post(
        f"/engagements/{engagement_id}/retainage/release", data={"release_reason": reason, "csrf_token": token}
    )


def release_of(admin_engine, engagement_id):
    with admin_engine.connect() as conn:
        return (
            conn.execute(
                text("select * from invoices where engagement_id = :e and kind = 'retainage_release'"),
                {"e": engagement_id},
            )
            .mappings()
            .one_or_none()
        )


def report_table(html: str, heading_id: str) -> str:
    section = re.search(rf'<section aria-labelledby="{heading_id}">.*?</section>', html, re.DOTALL)
    assert section, heading_id
    return section.group(0)


def figures(html: str) -> dict[str, str]:
    """The engagement page's retainage figures."""
    section = re.search(r'<section id="retainage".*?</section>', html, re.DOTALL)
    assert section, "the engagement's payments and retainage"
    return {
        visible_text(dt): visible_text(dd)
        for dt, dd in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", section.group(0), re.DOTALL)
    }


@pytest.fixture
def owner(app, login, world):
    return signed_in(app, login, world.owner)


@pytest.fixture
def kitchen(world, app_sessions, admin_engine):
    """Kitchen renovation (contractor X, USD, 10%): Design ($1,234.55, $123.46 withheld) approved, Build
    ($2,000.05) still planned. Active, so a release now is early."""
    eid = active_engagement(app_sessions, world, title="Kitchen renovation")
    approve(app_sessions, world, milestone_ids(admin_engine, eid)[0])
    return eid


# --- the report ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "owner", "finance"])
def test_staff_see_the_retainage_report(app, login, world, kitchen, who):
    response = signed_in(app, login, getattr(world, who)).get("/retainage/")
    assert response.status_code == 200
    assert "Kitchen renovation" in response.get_data(as_text=True)


def test_a_contractor_cannot_see_the_retainage_report(app, login, world, kitchen):
    assert signed_in(app, login, world.contractor_x_user).get("/retainage/").status_code == 403


def test_the_report_shows_withheld_released_and_held_per_engagement_and_per_contractor(
    app, login, world, app_sessions, admin_engine, owner, kitchen
):
    approve(app_sessions, world, milestone_ids(admin_engine, kitchen)[1])  # Build: 10% of $2,000.05 = $200.01
    porch = active_engagement(app_sessions, world, title="Porch", rows=(("Deck", "", "999.99", "2030-05-01"),))
    approve_milestones(
        app_sessions, admin_engine, milestone_ids(admin_engine, porch)
    )  # 99.999 rounds half up to $100.00
    loft = active_engagement(
        app_sessions,
        world,
        title="Loft conversion",
        contractor_id=world.contractor_y,
        currency="EUR",
        rows=(("Survey", "", "500.00", "2030-02-01"),),
    )
    approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, loft))
    none_held = active_engagement(
        app_sessions, world, title="Shed", retainage="0", rows=(("Shed", "", "300.00", "2030-02-01"),)
    )
    approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, none_held))
    assert release(owner, kitchen, "Snag list signed off early.").status_code == 303

    html = signed_in(app, login, world.finance).get("/retainage/").get_data(as_text=True)
    by_engagement = report_table(html, "by-engagement")
    kitchen_row = visible_text(table_row(by_engagement, "Kitchen renovation"))
    release_number = release_of(admin_engine, kitchen)["invoice_number"]
    assert kitchen_row.startswith("Kitchen renovation Contractor X")
    assert kitchen_row.endswith(f"Active $323.47 $323.47 $0.00 {release_number} Authorized")
    assert visible_text(table_row(by_engagement, "Porch")).endswith("Active $100.00 $0.00 $100.00 —")
    assert visible_text(table_row(by_engagement, "Loft conversion")).endswith("Active €50.00 €0.00 €50.00 —")
    assert "Shed" not in by_engagement  # nothing withheld, nothing to report

    by_contractor = report_table(html, "by-contractor")
    assert visible_text(table_row(by_contractor, "Contractor X")).endswith("USD $423.47 $323.47 $100.00")
    assert visible_text(table_row(by_contractor, "Contractor Y")).endswith("EUR €50.00 €0.00 €50.00")


def test_the_report_lists_the_most_held_first_and_narrows_to_one_contractor(
    app, login, world, app_sessions, admin_engine, kitchen
):
    porch = active_engagement(app_sessions, world, title="Porch", rows=(("Deck", "", "5000.00", "2030-05-01"),))
    approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, porch))  # $500.00 held
    loft = active_engagement(
        app_sessions,
        world,
        title="Loft conversion",
        contractor_id=world.contractor_y,
        rows=(("Survey", "", "500.00", "2030-02-01"),),
    )
    approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, loft))  # $50.00 held
    finance = signed_in(app, login, world.finance)
    every = report_table(finance.get("/retainage/").get_data(as_text=True), "by-engagement")
    titles = re.findall(r'#retainage">([^<]+)</a>', every)
    assert titles[0] == "Porch" and titles.index("Porch") < titles.index("Loft conversion")  # $500.00, then $50.00
    only_y = finance.get(f"/retainage/?contractor_id={world.contractor_y}").get_data(as_text=True)
    assert re.findall(r'#retainage">([^<]+)</a>', report_table(only_y, "by-engagement")) == ["Loft conversion"]
    assert f"By engagement: Contractor Y {world.suffix}" in visible_text(only_y)
    for bad in ("nope", "%00", "00000000-0000-0000-0000-000000000000"):
        assert finance.get(f"/retainage/?contractor_id={bad}&after=junk").status_code == 200, bad


def test_the_report_offers_the_release_to_the_engagements_owner_and_admins_only(app, login, world, kitchen):
    link = f'<a href="/engagements/{kitchen}#retainage">Release…</a>'
    for who, offered in (("owner", True), ("admin", True), ("finance", False)):
        html = signed_in(app, login, getattr(world, who)).get("/retainage/").get_data(as_text=True)
        assert (link in html) is offered, who


def test_the_report_shows_nothing_withheld_yet(app, login, world):
    html = signed_in(app, login, world.finance).get("/retainage/").get_data(as_text=True)
    assert "No retainage has been withheld yet." in html


def test_another_organizations_retainage_is_not_in_the_report(app, login, world, kitchen):
    html = signed_in(app, login, world.admin_b).get("/retainage/").get_data(as_text=True)
    assert "Kitchen renovation" not in html and "No retainage has been withheld yet." in html


# --- the release ---------------------------------------------------------------------------------------


def test_the_engagement_page_shows_what_is_held_and_offers_the_release(owner, kitchen):
    html = owner.get(f"/engagements/{kitchen}").get_data(as_text=True)
    assert figures(html) == {"Retainage withheld": "$123.46", "Released": "$0.00", "Held": "$123.46"}
    assert f'action="/engagements/{kitchen}/retainage/release"' in html
    assert "Reason for releasing early" in html


def test_an_early_release_without_a_reason_is_refused_at_the_reason(owner, world, admin_engine, kitchen):
    before = money_state(admin_engine, world.org_a)
    response = release(owner, kitchen, "   ")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    message = field_error(html, "release_reason")
    assert message and "reason for releasing retainage before the engagement is completed" in message
    assert re.search(r"<details open>\s*<summary>Release \$123\.46 of retainage</summary>", html)
    assert money_state(admin_engine, world.org_a) == before


def test_a_refused_release_keeps_the_reason_as_typed(owner, kitchen):
    typed = "Contractor relocating;\n" + "x" * 2000  # longer than the 2,000 characters a reason may have
    response = release(owner, kitchen, typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "release_reason")
    assert textarea_value(html, "release_reason") == typed


def test_an_early_release_with_a_reason_authorizes_a_payment_of_everything_held(owner, world, admin_engine, kitchen):
    response = release(owner, kitchen, "Contractor relocating; snag list signed off.")
    assert response.status_code == 303
    invoice = release_of(admin_engine, kitchen)
    assert response.headers["Location"] == f"/invoices/{invoice['id']}"
    assert (
        invoice["kind"],
        invoice["gross_minor"],
        invoice["retainage_minor"],
        invoice["net_minor"],
        invoice["fee_minor"],
        invoice["status"],
        invoice["authorized_by"],
        invoice["release_reason"],
    ) == (
        "retainage_release",
        12346,
        0,
        12346,
        0,
        "approved",
        world.owner.id,
        "Contractor relocating; snag list signed off.",
    )
    html = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        f"Retainage release authorized: {invoice['invoice_number']} for $123.46, due {format_day(invoice['due_date'])}."
    ) in flashes(html)
    assert "Note on the release: Contractor relocating; snag list signed off." in visible_text(html)
    page = owner.get(f"/engagements/{kitchen}").get_data(as_text=True)
    assert figures(page) == {"Retainage withheld": "$123.46", "Released": "$123.46", "Held": "$0.00"}
    assert f"Released as {invoice['invoice_number']}" in visible_text(page)
    assert f'action="/engagements/{kitchen}/retainage/release"' not in page


def test_the_release_waits_in_the_payment_queue_and_is_paid_like_any_payment(
    app, login, world, owner, admin_engine, kitchen
):
    assert release(owner, kitchen, "Early, agreed.").status_code == 303
    invoice = release_of(admin_engine, kitchen)
    finance = signed_in(app, login, world.finance)
    row = visible_text(table_row(finance.get("/payments/").get_data(as_text=True), invoice["invoice_number"]))
    assert "Retainage release" in row and "$123.46 $0.00 $123.46" in row
    token = csrf_token(finance, f"/invoices/{invoice['id']}")
    assert (
        finance.post(
            f"/invoices/{invoice['id']}/pay",
            data={"paid_at": date.today().isoformat(), "reference": "ACH 9", "method": "ach", "csrf_token": token},
        ).status_code
        == 303
    )
    assert invoice_row(admin_engine, invoice["id"])["status"] == "paid"


def test_a_second_release_is_a_conflict(app, login, world, owner, admin_engine, kitchen):
    admin = signed_in(app, login, world.admin)
    token = csrf_token(admin, f"/engagements/{kitchen}")  # the admin's tab opened before the owner released
    assert release(owner, kitchen, "Early, agreed.").status_code == 303
    before = money_state(admin_engine, world.org_a)
    response = admin.post(
        f"/engagements/{kitchen}/retainage/release", data={"release_reason": "Early, agreed too.", "csrf_token": token}
    )
    assert response.status_code == 409
    assert "Retainage is released once per engagement" in html_lib.unescape(response.get_data(as_text=True))
    assert money_state(admin_engine, world.org_a) == before


def test_a_completed_engagements_retainage_is_released_without_a_reason(
    owner, world, app_sessions, admin_engine, kitchen
):
    approve(app_sessions, world, milestone_ids(admin_engine, kitchen)[1])
    perform(app_sessions, world.owner, world.org_a, kitchen, "complete")
    html = owner.get(f"/engagements/{kitchen}").get_data(as_text=True)
    assert "Note (optional)" in html and "Reason for releasing early" not in html
    response = release(owner, kitchen, "")
    assert response.status_code == 303
    invoice = release_of(admin_engine, kitchen)
    assert (invoice["gross_minor"], invoice["release_reason"]) == (12346 + 20001, None)


def test_after_an_early_release_later_approvals_withhold_nothing(owner, world, app_sessions, admin_engine, kitchen):
    assert release(owner, kitchen, "Early, agreed.").status_code == 303
    build = invoice_row(admin_engine, approve(app_sessions, world, milestone_ids(admin_engine, kitchen)[1]))
    assert (build["retainage_bps"], build["retainage_minor"], build["net_minor"]) == (0, 0, 200005)
    page = owner.get(f"/engagements/{kitchen}").get_data(as_text=True)
    assert figures(page) == {"Retainage withheld": "$123.46", "Released": "$123.46", "Held": "$0.00"}


@pytest.mark.parametrize("who", ["finance", "contractor_x_user"])
def test_finance_and_the_contractor_cannot_release(app, login, world, admin_engine, kitchen, who):
    client = signed_in(app, login, getattr(world, who))
    html = client.get(f"/engagements/{kitchen}").get_data(as_text=True)
    assert f'action="/engagements/{kitchen}/retainage/release"' not in html
    before = money_state(admin_engine, world.org_a)
    assert release(client, kitchen, "Please.").status_code == 403
    assert money_state(admin_engine, world.org_a) == before


def test_another_project_owner_cannot_release(app, login, world, admin_engine, password_hash, kitchen):
    with make_session_factory(admin_engine)() as session:
        other = bootstrap.create_user(
            session,
            email=f"owner2-{world.suffix}@example.com",
            name="Olga Other",
            password_hash=password_hash,
            org_id=world.org_a,
            role=Role.OWNER,
        )
        session.commit()
    client = signed_in(app, login, other)
    assert f'action="/engagements/{kitchen}/retainage/release"' not in client.get(f"/engagements/{kitchen}").get_data(
        as_text=True
    )
    before = money_state(admin_engine, world.org_a)
    assert release(client, kitchen, "Mine now.").status_code == 403
    assert money_state(admin_engine, world.org_a) == before


def test_an_admin_releases_an_engagement_they_do_not_own(app, login, world, admin_engine, kitchen):
    assert (
        release(signed_in(app, login, world.admin), kitchen, "Owner on leave; agreed with finance.").status_code == 303
    )
    assert release_of(admin_engine, kitchen)["authorized_by"] == world.admin.id


def test_another_organizations_admin_gets_not_found(app, login, world, admin_engine, kitchen):
    admin_b = signed_in(app, login, world.admin_b)
    before = money_state(admin_engine, world.org_a)
    token = csrf_token(admin_b, "/")
    response = admin_b.post(
        f"/engagements/{kitchen}/retainage/release", data={"release_reason": "x", "csrf_token": token}
    )
    assert response.status_code == 404
    assert money_state(admin_engine, world.org_a) == before


def test_an_engagement_holding_no_retainage_cannot_release_any(owner, world, app_sessions, admin_engine):
    eid = active_engagement(app_sessions, world, title="Shed", retainage="0")
    approve(app_sessions, world, milestone_ids(admin_engine, eid)[0])
    assert f'action="/engagements/{eid}/retainage/release"' not in owner.get(f"/engagements/{eid}").get_data(
        as_text=True
    )
    before = money_state(admin_engine, world.org_a)
    assert release(owner, eid, "Why not.").status_code == 409
    assert money_state(admin_engine, world.org_a) == before
