"""The payment controls' pages (issue 18): the admins' approval policies, the approvals queue with Approve /
Reject in place, stand-ins, holds, and "why isn't this payable yet" on the invoice page and the payment queue.

Bad input is a 422 with the message at the field and nothing written; another role's page is a 403."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from kit.engagements import acting, owner_query
from kit.money_pages import active_engagement, approve, invoice_row, milestone_ids
from kit.web import field_error, flashes, post, signed_in, visible_text

from backoffice.services import approvals, holds
from backoffice.services.approvals import PolicyInput, StepInput

BIG = (("Roof", "New membrane", "12,800.00", "2030-01-15"), ("Gutters", "New gutters", "500.00", "2030-02-15"))


FINANCE_STEP = (StepInput(role="finance"),)


def policy(app_sessions, world, steps=FINANCE_STEP, minimum="10,000.00"):
    with acting(app_sessions, world.admin, world.org_a) as (session, actor):
        return approvals.create_policy(session, actor, PolicyInput("Large", "USD", minimum, list(steps)))


@pytest.fixture
def waiting(app_sessions, admin_engine, world):
    """A $12,800 milestone approved by its owner under a policy with a finance step, and a $500 one payable."""
    policy(app_sessions, world)
    e = active_engagement(app_sessions, world, rows=BIG)
    big, small = milestone_ids(admin_engine, e)
    return approve(app_sessions, world, big), approve(app_sessions, world, small)


def policies_of(admin_engine, org_id):
    return owner_query(
        admin_engine, "select * from approval_policies where org_id = :o and archived_at is null", o=org_id
    )


# --- the admins' policies -------------------------------------------------------------------------------


def test_an_admin_adds_a_policy_with_ordered_steps_and_sees_it_listed(app, login, world, admin_engine):
    admin = signed_in(app, login, world.admin)
    response = post(
        admin,
        "/admin/settings/approvals",
        {
            "name": "Large payments",
            "currency": "USD",
            "min_amount": "10,000.00",
            "step-1-role": "finance",
            "step-2-people": str(world.admin.id),
        },
    )
    assert response.status_code == 303
    page = admin.get("/admin/settings/approvals").get_data(as_text=True)
    text = visible_text(page)
    assert "Large payments" in text and "$10,000.00" in text
    assert ("anyone in finance" in text and "Ada" in text) or world.admin.name in text
    (row,) = policies_of(admin_engine, world.org_a)
    assert row["min_amount_minor"] == 1_000_000


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"name": "", "min_amount": "10,000.00", "step-1-role": "finance"}, "name", "Enter the policy's name"),
        ({"name": "X", "min_amount": "ten thousand", "step-1-role": "finance"}, "min_amount", ""),
        ({"name": "X", "min_amount": "10,000.00"}, "step-1", "at least one approval step"),
        ({"name": "X\x00", "min_amount": "10,000.00", "step-1-role": "finance"}, "name", "not allowed"),
        ({"name": "X", "min_amount": "10,000.00", "step-1-role": "contractor"}, "step-1", "admin, project owner"),
        (
            {"name": "X", "min_amount": "10,000.00", "step-1-role": "finance", "step-1-people": "not-an-id"},
            "step-1",
            "not both",
        ),
    ],
)
def test_a_bad_policy_is_refused_at_its_field_and_nothing_is_written(
    app, login, world, admin_engine, data, field, words
):
    admin = signed_in(app, login, world.admin)
    response = post(admin, "/admin/settings/approvals", {"currency": "USD", **data})
    assert response.status_code == 422
    message = field_error(response.get_data(as_text=True), field)
    assert message and words in message, message
    assert policies_of(admin_engine, world.org_a) == []


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user"])
def test_only_admins_reach_the_policies(app, login, world, who):
    client = signed_in(app, login, getattr(world, who))
    assert client.get("/admin/settings/approvals").status_code == 403


def test_switching_a_policy_off_keeps_what_is_waiting(app, login, world, admin_engine, waiting):
    big, _ = waiting
    admin = signed_in(app, login, world.admin)
    (row,) = policies_of(admin_engine, world.org_a)
    assert (
        post(
            admin, f"/admin/settings/approvals/{row['id']}/off", {}, token_from="/admin/settings/approvals"
        ).status_code
        == 303
    )
    assert policies_of(admin_engine, world.org_a) == []
    assert invoice_row(admin_engine, big)["status"] == "pending_approval"


# --- the approvals queue --------------------------------------------------------------------------------


def test_finance_sees_what_waits_for_it_with_the_amount_and_the_evidence_and_approves_it(
    app, login, world, admin_engine, waiting
):
    big, small = waiting
    finance = signed_in(app, login, world.finance)
    page = finance.get("/approvals/").get_data(as_text=True)
    number = invoice_row(admin_engine, big)["invoice_number"]
    assert number in page and "$12,800.00" in page and "Roof" in page and "New membrane" in page
    assert invoice_row(admin_engine, small)["invoice_number"] not in page  # below the policy: approved at once
    assert "Step 0 · approved by the reviewer" in visible_text(page)
    response = post(finance, f"/approvals/{big}/decide", {"decision": "approve"}, token_from="/approvals/")
    assert response.status_code == 303
    assert invoice_row(admin_engine, big)["status"] == "approved"
    assert number not in finance.get("/approvals/").get_data(as_text=True)


def test_the_owner_who_reviewed_it_is_not_asked_again(app, login, world, waiting):
    big, _ = waiting
    owner = signed_in(app, login, world.owner)
    assert str(big) not in owner.get("/approvals/").get_data(as_text=True)


def test_a_rejection_without_a_reason_is_refused_at_the_field_and_changes_nothing(
    app, login, world, admin_engine, waiting
):
    big, _ = waiting
    finance = signed_in(app, login, world.finance)
    response = post(
        finance, f"/approvals/{big}/decide", {"decision": "reject", "reason": " "}, token_from="/approvals/"
    )
    assert response.status_code == 422
    assert "reason" in (field_error(response.get_data(as_text=True), f"reason-{big}") or "")
    assert invoice_row(admin_engine, big)["status"] == "pending_approval"


def test_a_rejection_with_a_reason_voids_it_and_the_invoice_page_says_who_and_why(
    app, login, world, admin_engine, waiting
):
    big, _ = waiting
    finance = signed_in(app, login, world.finance)
    response = post(
        finance,
        f"/approvals/{big}/decide",
        {"decision": "reject", "reason": "Photos show the old membrane."},
        token_from="/approvals/",
    )
    assert response.status_code == 303
    assert invoice_row(admin_engine, big)["status"] == "void"
    text = visible_text(finance.get(f"/invoices/{big}").get_data(as_text=True))
    assert "rejected by" in text and "Photos show the old membrane." in text


def test_contractors_have_no_approvals_page(app, login, world):
    client = signed_in(app, login, world.contractor_x_user)
    assert client.get("/approvals/").status_code == 403


def test_a_stand_in_is_named_for_dates_and_bad_dates_are_refused_at_the_field(app, login, world, admin_engine):
    finance = signed_in(app, login, world.finance)
    today = date.today()
    response = post(
        finance,
        "/approvals/delegations",
        {
            "delegate_id": str(world.admin.id),
            "starts_on": today.isoformat(),
            "ends_on": (today - timedelta(1)).isoformat(),
        },
        token_from="/approvals/",
    )
    assert response.status_code == 422
    assert "on or after" in field_error(response.get_data(as_text=True), "ends_on")
    response = post(
        finance,
        "/approvals/delegations",
        {"delegate_id": str(world.admin.id), "starts_on": today.isoformat(), "ends_on": "2030-13-01"},
        token_from="/approvals/",
    )
    assert response.status_code == 422
    assert owner_query(admin_engine, "select * from approval_delegations where org_id = :o", o=world.org_a) == []
    response = post(
        finance,
        "/approvals/delegations",
        {
            "delegate_id": str(world.admin.id),
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(7)).isoformat(),
        },
        token_from="/approvals/",
    )
    assert response.status_code == 303
    assert world.admin.name in visible_text(finance.get("/approvals/").get_data(as_text=True))


# --- why isn't this payable yet, and holds ---------------------------------------------------------------


def test_the_invoice_page_says_which_step_it_waits_for(app, login, world, waiting):
    big, _ = waiting
    finance = signed_in(app, login, world.finance)
    text = visible_text(finance.get(f"/invoices/{big}").get_data(as_text=True))
    assert "Why isn't this payable yet" in text
    assert "Waiting for approval — step 1 of 1, anyone in finance" in text
    assert "Approve step 1" in text


def test_finance_holds_an_invoice_the_page_says_why_and_releasing_it_is_recorded(
    app, login, world, admin_engine, waiting
):
    _, small = waiting
    finance = signed_in(app, login, world.finance)
    response = post(
        finance, f"/invoices/{small}/hold", {"reason": "Lien waiver missing"}, token_from=f"/invoices/{small}"
    )
    assert response.status_code == 303
    page = finance.get(f"/invoices/{small}").get_data(as_text=True)
    assert "On hold: Lien waiver missing" in visible_text(page)
    assert f'action="/invoices/{small}/pay"' not in page  # no pay form while held
    queue = finance.get("/payments/?status=blocked").get_data(as_text=True)
    assert invoice_row(admin_engine, small)["invoice_number"] in queue and "On hold: Lien waiver missing" in queue
    (hold,) = owner_query(admin_engine, "select id from holds where invoice_id = :i", i=small)
    response = post(
        finance,
        f"/payments/holds/{hold['id']}/release",
        {"note": "Received", "next": "invoice"},
        token_from="/payments/holds",
    )
    assert response.status_code == 303
    assert "On hold" not in visible_text(finance.get(f"/invoices/{small}").get_data(as_text=True))
    (released,) = owner_query(admin_engine, "select released_by, release_note from holds where id = :h", h=hold["id"])
    assert (released["released_by"], released["release_note"]) == (world.finance.id, "Received")


def test_a_hold_without_a_reason_is_refused_and_writes_nothing(app, login, world, admin_engine, waiting):
    _, small = waiting
    finance = signed_in(app, login, world.finance)
    response = post(finance, f"/invoices/{small}/hold", {"reason": "\x00"}, token_from=f"/invoices/{small}")
    assert response.status_code in (303, 422)
    assert owner_query(admin_engine, "select * from holds where invoice_id = :i", i=small) == []
    assert any(
        "not allowed" in f or "Enter" in f for f in flashes(finance.get(f"/invoices/{small}").get_data(as_text=True))
    )


def test_holding_a_contractor_names_it_on_every_payment_and_owners_cannot_hold(
    app, login, world, admin_engine, waiting
):
    _, small = waiting
    owner = signed_in(app, login, world.owner)
    assert owner.get("/payments/holds").status_code == 403
    finance = signed_in(app, login, world.finance)
    response = post(finance, "/payments/holds/contractor", {"contractor_id": "", "reason": "x"})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "contractor_id")
    response = post(
        finance, "/payments/holds/contractor", {"contractor_id": str(world.contractor_x), "reason": "Bank check"}
    )
    assert response.status_code == 303
    text = visible_text(owner.get(f"/invoices/{small}").get_data(as_text=True))
    assert "The contractor is on hold: Bank check" in text


def test_the_blocked_filter_lists_what_waits_for_approval_with_its_step(app, login, world, admin_engine, waiting):
    big, small = waiting
    finance = signed_in(app, login, world.finance)
    page = finance.get("/payments/?status=blocked").get_data(as_text=True)
    assert invoice_row(admin_engine, big)["invoice_number"] in page
    assert invoice_row(admin_engine, small)["invoice_number"] not in page
    assert "Waiting for approval — step 1 of 1, anyone in finance" in visible_text(page)


def test_the_hold_service_and_page_agree_on_a_second_hold(app_sessions, world, waiting):
    _, small = waiting
    with acting(app_sessions, world.finance, world.org_a) as (session, actor):
        holds.hold_invoice(session, actor, small, "First")
    with acting(app_sessions, world.finance, world.org_a) as (session, actor), pytest.raises(Exception) as exc:
        holds.hold_invoice(session, actor, small, "Second")
    assert "on hold already" in str(exc.value)
