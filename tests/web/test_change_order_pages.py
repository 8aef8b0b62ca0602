"""Change orders through the web: the owner edits an active engagement's schedule as it should become,
with a reason; the differences become CO-n with each line's before and after, shown to the owner and to
the contractor's user. Bad or empty change orders write nothing; final milestones stay final; a change
order issued meanwhile is a conflict."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from kit.engagements import (
    change_orders_of,
    create_active,
    create_draft,
    create_sent,
    issue_change_order,
    milestones_of,
    perform,
)
from kit.milestones import move_milestone
from kit.web import (
    HTMX,
    csrf_token,
    field_error,
    flashes,
    followed,
    input_value,
    signed_in,
    table_row,
    textarea_value,
    visible_text,
)


@pytest.fixture
def owner(app, world, login):
    return signed_in(app, login, world.owner)


@pytest.fixture
def active(world, app_sessions):
    """An active engagement of the owner's with contractor X: Design $1,000.00, Build $2,000.00, Handover $500.00."""
    return create_active(app_sessions, world)


def new_co(eid) -> str:
    return f"/engagements/{eid}/change-orders/new"


def form_fields(html: str) -> dict[str, str]:
    """What the change order form submits as the browser would: its inputs (checked boxes only) and textareas."""
    form = re.search(r'<form id="change-order-form".*?</form>', html, re.DOTALL)
    assert form, "the change order form"
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form.group(0)):
        name = re.search(r'\bname="([^"]+)"', tag)
        if not name:
            continue
        if 'type="checkbox"' in tag and not re.search(r"\bchecked\b", tag):
            continue
        value = re.search(r'\bvalue="([^"]*)"', tag)
        fields[name.group(1)] = html_lib.unescape(value.group(1)) if value else ""
    for name, value in re.findall(r'<textarea\b[^>]*\bname="([^"]+)"[^>]*>(.*?)</textarea>', form.group(0), re.DOTALL):
        fields[name] = html_lib.unescape(value)
    return fields


def opened(client, eid) -> dict[str, str]:
    """The form as it opens, ready to be edited and submitted."""
    response = client.get(new_co(eid))
    assert response.status_code == 200
    return form_fields(response.get_data(as_text=True))


def submit(client, eid, fields: dict, op: str = "issue", **kwargs):
    return client.post(new_co(eid), data={**fields, "op": op}, **kwargs)


def by_title(admin_engine, eid) -> dict:
    return {m.title: m for m in milestones_of(admin_engine, eid)}


# --- issuing ---------------------------------------------------------------------------------------


def test_the_owner_issues_a_change_order_that_adjusts_cancels_and_adds(owner, world, active, admin_engine):
    ms = by_title(admin_engine, active)
    build, handover = ms["Build"].id, ms["Handover"].id
    fields = opened(owner, active)
    assert fields["based_on"] == "0"
    assert fields[f"ms-{build}-amount"] == "2,000.00"
    # a row for the new milestone first
    added = submit(owner, active, fields, op="add")
    assert added.status_code == 200
    fields = form_fields(added.get_data(as_text=True))
    assert fields["new-0-title"] == ""
    assert change_orders_of(admin_engine, active) == []
    fields.update(
        {
            "reason": "Client asked for more structural work; handover is now done by their own staff.",
            f"ms-{build}-amount": "2,400.00",
            f"ms-{build}-due_date": "2030-03-15",
            f"ms-{handover}-cancel": "1",
            "new-0-title": "Snagging",
            "new-0-deliverable": "Snag list closed",
            "new-0-amount": "150.00",
            "new-0-due_date": "2030-05-15",
        }
    )
    response = submit(owner, active, fields)
    page = followed(owner, response, f"/engagements/{active}#co-1")
    assert "CO-1 issued and applied. The contractor sees it on the engagement." in flashes(page)

    co = re.search(r'<article id="co-1".*?</article>', page, re.DOTALL)
    assert co, "CO-1 is on the engagement page"
    co_html = co.group(0)
    assert "Client asked for more structural work" in visible_text(co_html)
    assert "$3,500.00 → $3,550.00" in visible_text(co_html)
    adjusted = visible_text(table_row(co_html, "Build"))
    assert "Adjusted" in adjusted
    assert re.search(r"amount \$2,000\.00 due date 01 Mar 2030 amount \$2,400\.00 due date 15 Mar 2030", adjusted), (
        adjusted
    )
    cancelled = visible_text(table_row(co_html, "Handover"))
    assert re.search(r"Cancelled Handover status Planned status Cancelled", cancelled), cancelled
    new = visible_text(table_row(co_html, "Snagging"))
    assert "Added" in new and "$150.00" in new and "15 May 2030" in new

    after = by_title(admin_engine, active)
    assert (after["Build"].amount_minor, after["Build"].due_date.isoformat(), after["Build"].status) == (
        240000,
        "2030-03-15",
        "planned",
    )
    assert after["Handover"].status == "cancelled"
    assert (after["Snagging"].seq, after["Snagging"].amount_minor, after["Snagging"].deliverable) == (
        4,
        15000,
        "Snag list closed",
    )
    assert after["Design"].amount_minor == 100000
    [stored] = change_orders_of(admin_engine, active)
    assert (stored.number, stored.contract_value_before, stored.contract_value_after) == (1, 350000, 355000)
    # the milestones table and totals follow the change
    assert "Contract value $3,550.00" in visible_text(page)


def test_the_contractors_user_sees_the_change_orders_on_their_engagement(app, world, login, owner, active):
    fields = opened(owner, active)
    design = next(k for k in fields if k.endswith("-title") and fields[k] == "Design").removesuffix("-title")
    fields.update({"reason": "Design needs a second round.", f"{design}-amount": "1,300.00"})
    assert submit(owner, active, fields).status_code == 303
    contractor = signed_in(app, login, world.contractor_x_user)
    page = contractor.get(f"/engagements/{active}").get_data(as_text=True)
    assert "CO-1" in page
    co = visible_text(re.search(r'<article id="co-1".*?</article>', page, re.DOTALL).group(0))
    assert "Design needs a second round." in co
    assert "$1,000.00" in co and "$1,300.00" in co
    assert f'href="/engagements/{active}/change-orders/new"' not in page  # theirs to read, not to issue
    other = signed_in(app, login, world.contractor_y_user)
    assert other.get(f"/engagements/{active}").status_code == 404


def test_change_orders_are_numbered_one_after_another(owner, world, app_sessions, active, admin_engine):
    issue_change_order(
        app_sessions,
        world.owner,
        world.org_a,
        active,
        based_on=0,
        reason="First",
        additions=[("Extra", "", "10.00", "2030-06-01")],
    )
    page = owner.get(new_co(active)).get_data(as_text=True)
    assert "Issue CO-2" in visible_text(page)
    fields = form_fields(page)
    assert fields["based_on"] == "1"
    extra = next(k for k in fields if k.endswith("-title") and fields[k] == "Extra").removesuffix("-title")
    fields.update({"reason": "Second", f"{extra}-amount": "20.00"})
    response = submit(owner, active, fields)
    assert response.headers["Location"] == f"/engagements/{active}#co-2"
    assert [co.number for co in change_orders_of(admin_engine, active)] == [1, 2]


def test_a_paused_engagement_takes_change_orders_too(owner, world, app_sessions, active):
    perform(app_sessions, world.owner, world.org_a, active, "pause")
    assert owner.get(new_co(active)).status_code == 200


# --- refused, with nothing written -----------------------------------------------------------------


def test_a_change_order_that_changes_nothing_is_refused(owner, world, active, admin_engine):
    before = milestones_of(admin_engine, active)
    fields = {**opened(owner, active), "reason": "Just looking"}
    response = submit(owner, active, fields)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "This change order changes nothing: adjust, cancel or add at least one milestone." in visible_text(html)
    assert textarea_value(html, "reason") == "Just looking"
    assert change_orders_of(admin_engine, active) == []
    assert milestones_of(admin_engine, active) == before


def test_a_change_order_without_a_reason_is_refused_at_the_field_with_the_changes_kept(
    owner, world, active, admin_engine
):
    before = milestones_of(admin_engine, active)
    build = by_title(admin_engine, active)["Build"].id
    fields = {**opened(owner, active), "reason": "  ", f"ms-{build}-amount": "2,400.00"}
    response = submit(owner, active, fields)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "reason") == "Enter the reason for the change."
    assert input_value(html, f"ms-{build}-amount") == "2,400.00"
    assert change_orders_of(admin_engine, active) == []
    assert milestones_of(admin_engine, active) == before


def test_no_reason_and_no_changes_are_both_reported(owner, world, active, admin_engine):
    response = submit(owner, active, {**opened(owner, active), "reason": ""})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "reason") == "Enter the reason for the change."
    assert change_orders_of(admin_engine, active) == []


def test_bad_values_are_refused_at_their_fields(owner, world, active, admin_engine):
    before = milestones_of(admin_engine, active)
    build = by_title(admin_engine, active)["Build"].id
    fields = form_fields(submit(owner, active, opened(owner, active), op="add").get_data(as_text=True))
    fields.update(
        {
            "reason": "More work",
            f"ms-{build}-amount": "2.400,00",
            f"ms-{build}-due_date": "03/15/2030",
            "new-0-title": "",
            "new-0-amount": "150.00",
            "new-0-due_date": "2030-05-15",
        }
    )
    response = submit(owner, active, fields)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert (
        field_error(html, f"ms-{build}-amount")
        == "Use a point before the decimals and commas between thousands, like 1,250.00."
    )
    assert field_error(html, f"ms-{build}-due_date") == "Enter the due date as YYYY-MM-DD, for example 2026-12-31."
    assert field_error(html, "new-0-title") == "Enter the title."
    assert input_value(html, "new-0-amount") == "150.00"
    assert change_orders_of(admin_engine, active) == []
    assert milestones_of(admin_engine, active) == before


def test_a_change_order_cannot_cancel_every_milestone(owner, world, active, admin_engine):
    fields = {**opened(owner, active), "reason": "Stop everything"}
    for m in milestones_of(admin_engine, active):
        fields[f"ms-{m.id}-cancel"] = "1"
    response = submit(owner, active, fields)
    assert response.status_code == 422
    assert "A change order cannot cancel every milestone; cancel the engagement instead." in visible_text(
        response.get_data(as_text=True)
    )
    assert {m.status for m in milestones_of(admin_engine, active)} == {"planned"}


def test_approved_milestones_are_shown_read_only(owner, world, active, admin_engine, app_sessions):
    ms = by_title(admin_engine, active)
    move_milestone(app_sessions, admin_engine, ms["Design"].id, "submitted", "approved")
    move_milestone(app_sessions, admin_engine, ms["Build"].id, "submitted")
    html = owner.get(new_co(active)).get_data(as_text=True)
    fields = form_fields(html)
    design, build, handover = ms["Design"].id, ms["Build"].id, ms["Handover"].id
    assert not any(k.startswith(f"ms-{design}-") for k in fields)  # nothing of it to edit
    design_row = visible_text(table_row(html, "Design"))
    assert "Approved" in design_row and "$1,000.00" in design_row and "Final" in design_row
    # work under review can still be adjusted, but not cancelled; planned work can be either
    assert fields[f"ms-{build}-amount"] == "2,000.00"
    assert f'name="ms-{build}-cancel"' not in html
    assert f'name="ms-{handover}-cancel"' in html


def test_a_milestone_approved_while_the_form_was_open_is_left_alone_and_the_page_says_why(
    owner, world, active, admin_engine, app_sessions
):
    design = by_title(admin_engine, active)["Design"].id
    move_milestone(app_sessions, admin_engine, design, "submitted")
    fields = opened(owner, active)  # Design is under review, so its amount can still be adjusted...
    fields.update({"reason": "Bigger design scope", f"ms-{design}-amount": "5,000.00"})
    move_milestone(app_sessions, admin_engine, design, "approved")  # ...but it is approved before the owner issues
    before = milestones_of(admin_engine, active)
    response = submit(owner, active, fields)
    assert response.status_code == 422
    assert "“Design” is approved and cannot be changed." in visible_text(response.get_data(as_text=True))
    assert change_orders_of(admin_engine, active) == []
    assert milestones_of(admin_engine, active) == before


def test_a_milestone_submitted_while_the_form_was_open_is_not_cancelled_and_the_page_says_why(
    owner, world, active, admin_engine, app_sessions
):
    design = by_title(admin_engine, active)["Design"].id
    fields = opened(owner, active)
    fields.update({"reason": "Design no longer needed", f"ms-{design}-cancel": "1"})
    move_milestone(app_sessions, admin_engine, design, "submitted")  # the contractor submits it meanwhile
    response = submit(owner, active, fields)
    assert response.status_code == 422
    assert "is submitted and can no longer be cancelled." in visible_text(response.get_data(as_text=True))
    assert change_orders_of(admin_engine, active) == []
    assert by_title(admin_engine, active)["Design"].status == "submitted"


def test_changing_an_approved_milestone_anyway_writes_nothing(owner, world, active, admin_engine, app_sessions):
    design = by_title(admin_engine, active)["Design"].id
    move_milestone(app_sessions, admin_engine, design, "submitted", "approved")
    before = milestones_of(admin_engine, active)
    for tampered in (
        {
            f"ms-{design}-title": "Design",
            f"ms-{design}-deliverable": "Floor plans",
            f"ms-{design}-amount": "5,000.00",
            f"ms-{design}-due_date": "2030-01-15",
        },
        {f"ms-{design}-cancel": "1"},
    ):
        response = submit(owner, active, {**opened(owner, active), "reason": "Sneaky", **tampered})
        assert response.status_code == 422
    assert change_orders_of(admin_engine, active) == []
    assert milestones_of(admin_engine, active) == before


def test_a_change_order_issued_meanwhile_makes_the_open_form_a_conflict(app, world, login, owner, active, admin_engine):
    fields = opened(owner, active)  # the owner opens the form...
    admin = signed_in(app, login, world.admin)  # ...while an admin issues CO-1
    admin_fields = {
        **opened(admin, active),
        "reason": "Admin's change",
        "new-0-title": "Extra",
        "new-0-amount": "10.00",
        "new-0-due_date": "2030-06-01",
    }
    assert submit(admin, active, admin_fields).status_code == 303
    build = by_title(admin_engine, active)["Build"].id
    response = submit(owner, active, {**fields, "reason": "Owner's change", f"ms-{build}-amount": "2,400.00"})
    assert response.status_code == 409
    assert (
        "CO-1 was issued while you were editing. Reload the page to start from the schedule as it is now."
        in visible_text(response.get_data(as_text=True))
    )
    assert [co.reason for co in change_orders_of(admin_engine, active)] == ["Admin's change"]
    assert by_title(admin_engine, active)["Build"].amount_minor == 200000


@pytest.mark.parametrize("make", [create_draft, create_sent])
def test_the_page_is_refused_before_the_engagement_is_active(owner, world, app_sessions, admin_engine, make):
    eid = make(app_sessions, world)
    response = owner.get(new_co(eid))
    assert response.status_code == 409
    assert "Change orders apply to active or paused engagements" in visible_text(response.get_data(as_text=True))
    token = csrf_token(owner, f"/engagements/{eid}")
    response = owner.post(
        new_co(eid),
        data={
            "csrf_token": token,
            "reason": "Too early",
            "based_on": "0",
            "op": "issue",
            "new-0-title": "Extra",
            "new-0-amount": "10.00",
            "new-0-due_date": "2030-06-01",
        },
    )
    assert response.status_code == 409
    assert change_orders_of(admin_engine, eid) == []
    assert "Extra" not in by_title(admin_engine, eid)


@pytest.mark.parametrize("who", ["contractor_x_user", "finance"])
def test_contractors_and_finance_cannot_issue_change_orders(app, world, login, active, admin_engine, who):
    c = signed_in(app, login, getattr(world, who))
    assert c.get(new_co(active)).status_code == 403
    token = csrf_token(c, f"/engagements/{active}")
    response = c.post(
        new_co(active),
        data={
            "csrf_token": token,
            "reason": "Mine",
            "based_on": "0",
            "op": "issue",
            "new-0-title": "Extra",
            "new-0-amount": "10.00",
            "new-0-due_date": "2030-06-01",
        },
    )
    assert response.status_code == 403
    assert change_orders_of(admin_engine, active) == []


def test_an_owner_cannot_issue_change_orders_on_someone_elses_engagement(app, world, login, app_sessions, admin_engine):
    eid = create_active(app_sessions, world, by=world.admin, owner_user_id=world.admin.id)
    owner = signed_in(app, login, world.owner)
    assert owner.get(new_co(eid)).status_code == 403


def test_another_organizations_engagement_is_not_found(app, world, login, active):
    admin_b = signed_in(app, login, world.admin_b)
    assert admin_b.get(new_co(active)).status_code == 404


def test_issuing_without_the_csrf_token_is_refused(owner, world, active, admin_engine):
    fields = {
        **opened(owner, active),
        "reason": "No token",
        "new-0-title": "Extra",
        "new-0-amount": "10.00",
        "new-0-due_date": "2030-06-01",
    }
    fields.pop("csrf_token")
    response = submit(owner, active, fields)
    assert response.status_code == 400
    assert change_orders_of(admin_engine, active) == []


# --- htmx ------------------------------------------------------------------------------------------


def test_adding_a_row_with_htmx_returns_just_the_form(owner, world, active, admin_engine):
    fields = opened(owner, active)
    token = fields.pop("csrf_token")
    response = submit(
        owner, active, {**fields, "reason": "Typed so far"}, op="add", headers={**HTMX, "X-CSRFToken": token}
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert 'id="change-order-form"' in html
    assert "new-0-title" in form_fields(html)
    assert textarea_value(html, "reason") == "Typed so far"
    assert change_orders_of(admin_engine, active) == []


def test_issuing_with_htmx_redirects_the_browser_to_the_change_order(owner, world, active, admin_engine):
    fields = opened(owner, active)
    token = fields.pop("csrf_token")
    fields.update(
        {"reason": "Extra work", "new-0-title": "Extra", "new-0-amount": "10.00", "new-0-due_date": "2030-06-01"}
    )
    response = submit(owner, active, fields, headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/engagements/{active}#co-1"
    assert [co.number for co in change_orders_of(admin_engine, active)] == [1]
