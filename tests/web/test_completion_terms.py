"""Setting up a completion engagement through the web as its project owner and an admin do (issue 20): the terms
form with the billing mode, the contract value and the advance; the task editor that shares the value less the
advance; the Send action that makes the owner confirm the advance; the contractor reading the advance and the tasks
before accepting; and the organization's advance settings. Every amount expected here is written out by hand."""

from __future__ import annotations

import re

import pytest
from kit.completion import completion_draft, completion_invoices
from kit.engagements import engagement_row, milestones_of, owner_query
from kit.money import party, set_org
from kit.web import (
    actions_offered,
    csrf_token,
    field_error,
    flashes,
    followed,
    input_value,
    post,
    signed_in,
    visible_text,
)


@pytest.fixture
def owner(app, world, login):
    return signed_in(app, login, world.owner)


@pytest.fixture
def admin(app, world, login):
    return signed_in(app, login, world.admin)


def terms(world, **overrides) -> dict:
    data = {
        "contractor_id": str(world.contractor_x),
        "title": "Shop fit-out, 3 Mill Lane",
        "sow_reference": "SOW-20",
        "currency": "USD",
        "retainage": "0",
        "payment_terms_days": "30",
        "service_fee": "0",
        "billing_mode": "completion",
        "contract_value": "10,000.00",
        "advance": "12",
    }
    data.update(overrides)
    return data


def tasks_form(rows, *, mode="amounts", op="save") -> dict:
    data = {"mode": mode, "contract_value": "", "op": op}
    for i, (title, amount) in enumerate(rows):
        data |= {
            f"rows-{i}-id": "",
            f"rows-{i}-title": title,
            f"rows-{i}-deliverable": "",
            f"rows-{i}-amount": amount,
            f"rows-{i}-percent": "",
            f"rows-{i}-due_date": "2030-01-15",
        }
    return data


def completion_row(admin_engine, engagement_id) -> dict:
    (row,) = owner_query(
        admin_engine,
        "select billing_mode, contract_value_minor, advance_bps, advance_minor, advance_confirmed_by, status"
        " from engagements where id = :e",
        e=engagement_id,
    )
    return row


def engagement_id_from(location: str) -> str:
    match = re.search(r"/engagements/([0-9a-f-]{36})/milestones$", location)
    assert match, location
    return match.group(1)


def checked_mode(html: str) -> str | None:
    """The billing mode whose radio is checked."""
    for tag in re.findall(r'<input\b[^>]*name="billing_mode"[^>]*>', html):
        if re.search(r"\bchecked\b", tag):
            return re.search(r'value="([^"]*)"', tag).group(1)
    return None


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


# --- the terms form ------------------------------------------------------------------------------------------------


def test_the_terms_form_offers_both_billing_modes_with_their_hints_and_the_organizations_default_advance(owner):
    html = page(owner, "/engagements/new")
    text = visible_text(html)
    assert "Milestone billing" in text and "Completion billing" in text
    assert "Each milestone is paid when its work is approved." in text
    assert "the final payment when the last task is approved" in text
    assert checked_mode(html) == "milestone"
    assert input_value(html, "advance") == "12"
    assert "0–50% of the contract value" in text and "the organization's default, 12%" in text
    # The completion fields are marked so that CSS hides them while milestone billing is chosen.
    assert 'class="completion-only"' in html


def test_an_owner_creates_a_completion_engagement_and_is_sent_to_its_tasks(owner, world, admin_engine):
    response = post(owner, "/engagements/new", terms(world))
    assert response.status_code == 303
    engagement_id = engagement_id_from(response.headers["Location"])
    row = completion_row(admin_engine, engagement_id)
    assert (row["billing_mode"], row["contract_value_minor"], row["advance_bps"], row["advance_minor"]) == (
        "completion",
        1_000_000,
        1200,
        120_000,
    )
    editor = page(owner, response.headers["Location"])
    assert "Engagement created as a draft. Add its tasks, then send the work request." in flashes(editor)
    assert "Tasks share $8,800.00: the contract value $10,000.00 less the 12% advance $1,200.00" in visible_text(editor)


def test_an_empty_advance_takes_the_organizations_default(owner, world, admin_engine):
    set_org(admin_engine, world.org_a, default_advance_bps=1000)
    response = post(owner, "/engagements/new", terms(world, advance="", contract_value="2,500.00"))
    assert response.status_code == 303
    row = completion_row(admin_engine, engagement_id_from(response.headers["Location"]))
    assert (row["advance_bps"], row["advance_minor"]) == (1000, 25_000)


def test_milestone_billing_ignores_the_completion_fields(owner, world, admin_engine):
    response = post(owner, "/engagements/new", terms(world, billing_mode="milestone", contract_value="not money"))
    assert response.status_code == 303
    row = completion_row(admin_engine, engagement_id_from(response.headers["Location"]))
    assert (row["billing_mode"], row["contract_value_minor"], row["advance_minor"]) == ("milestone", None, 0)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"contract_value": ""}, "contract_value", "Enter an amount."),
        ({"contract_value": "10.000,00"}, "contract_value", "Use a point before the decimals"),
        ({"contract_value": "-5"}, "contract_value", "greater than zero"),
        ({"advance": "60"}, "advance", "An advance is at most 50% of the contract value."),
        ({"advance": "12.345"}, "advance", "at most two decimals"),
        ({"billing_mode": "barter"}, "billing_mode", "Choose milestone billing or completion billing."),
    ],
)
def test_bad_completion_terms_are_refused_at_their_field_and_nothing_is_created(
    owner, world, admin_engine, overrides, field, message
):
    before = len(owner_query(admin_engine, "select id from engagements where org_id = :o", o=world.org_a))
    typed = terms(world, title="Kept title", **overrides)
    response = post(owner, "/engagements/new", typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in (field_error(html, field) or "")
    assert input_value(html, "title") == "Kept title"
    after = len(owner_query(admin_engine, "select id from engagements where org_id = :o", o=world.org_a))
    assert after == before


def test_an_advance_is_refused_when_the_organization_pays_none(owner, world, admin_engine):
    set_org(admin_engine, world.org_a, advances_enabled=False)
    html = page(owner, "/engagements/new")
    assert "This organization pays no advances" in visible_text(html)
    assert input_value(html, "advance") == "0"
    response = post(owner, "/engagements/new", terms(world, advance="10"))
    assert response.status_code == 422
    assert "pays no advances" in field_error(response.get_data(as_text=True), "advance")
    response = post(owner, "/engagements/new", terms(world, advance=""))
    assert response.status_code == 303
    row = completion_row(admin_engine, engagement_id_from(response.headers["Location"]))
    assert (row["advance_bps"], row["advance_minor"]) == (0, 0)


@pytest.mark.parametrize("field", ["billing_mode", "contract_value", "advance", "title", "contractor_id"])
def test_a_nul_byte_in_any_terms_field_is_refused_not_a_server_error(owner, world, field):
    data = terms(world)
    data[field] = data[field] + "\x00"
    response = post(owner, "/engagements/new", data)
    assert response.status_code == 422


def test_editing_a_drafts_terms_shows_the_saved_completion_terms_and_saves_changes(owner, world, admin_engine, act_as):
    engagement_id = completion_draft(act_as, party(world), value="10,000.00", advance="12.5", tasks=("8,750.00",))
    html = page(owner, f"/engagements/{engagement_id}/terms")
    assert checked_mode(html) == "completion"
    assert input_value(html, "contract_value") == "10,000.00"
    assert input_value(html, "advance") == "12.5"
    response = post(
        owner, f"/engagements/{engagement_id}/terms", terms(world, contract_value="20,000.00", advance="10")
    )
    assert response.status_code == 303
    row = completion_row(admin_engine, engagement_id)
    assert (row["contract_value_minor"], row["advance_bps"], row["advance_minor"]) == (2_000_000, 1000, 200_000)


# --- the task editor -----------------------------------------------------------------------------------------------


def test_an_equal_split_shares_the_contract_value_less_the_advance(owner, world, admin_engine, act_as):
    engagement_id = completion_draft(act_as, party(world), value="10,000.00", advance="12", tasks=("8,800.00",))
    rows = [("Strip out", ""), ("Joinery", ""), ("Finishes", "")]
    preview = post(owner, f"/engagements/{engagement_id}/milestones", tasks_form(rows, mode="equal", op="refresh"))
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert input_value(html, "contract_value") == "8,800.00"
    assert "$2,933.34" in html and "$2,933.33" in html
    response = post(owner, f"/engagements/{engagement_id}/milestones", tasks_form(rows, mode="equal"))
    assert response.status_code == 303
    assert "Saved 3 tasks." in flashes(followed(owner, response, f"/engagements/{engagement_id}"))
    assert [m.amount_minor for m in milestones_of(admin_engine, engagement_id)] == [293_334, 293_333, 293_333]


def test_a_split_ignores_a_contract_value_typed_over_the_terms(owner, world, admin_engine, act_as):
    engagement_id = completion_draft(act_as, party(world), value="10,000.00", advance="12", tasks=("8,800.00",))
    data = tasks_form([("One", ""), ("Two", "")], mode="equal") | {"contract_value": "10,000.00"}
    assert post(owner, f"/engagements/{engagement_id}/milestones", data).status_code == 303
    assert [m.amount_minor for m in milestones_of(admin_engine, engagement_id)] == [440_000, 440_000]


def test_typed_amounts_that_miss_the_pool_are_refused_naming_both_sums(owner, world, admin_engine, act_as):
    engagement_id = completion_draft(act_as, party(world), value="10,000.00", advance="12", tasks=("8,800.00",))
    rows = [("Strip out", "4,000.00"), ("Joinery", "4,000.00")]
    response = post(owner, f"/engagements/{engagement_id}/milestones", tasks_form(rows))
    assert response.status_code == 422
    text = visible_text(response.get_data(as_text=True))
    assert "Nothing was saved. The tasks add up to $8,000.00; they must add up to $8,800.00" in text
    assert "the contract value $10,000.00 less the advance $1,200.00" in text
    assert "Total $8,000.00 of $8,800.00: $800.00 still to assign." in text
    assert [m.amount_minor for m in milestones_of(admin_engine, engagement_id)] == [880_000]


def test_the_running_total_says_what_is_left_and_what_is_too_much(owner, world, act_as):
    engagement_id = completion_draft(act_as, party(world), value="10,000.00", advance="12", tasks=("8,800.00",))
    path = f"/engagements/{engagement_id}/milestones"
    assert "Total $8,800.00 of $8,800.00: every amount is assigned." in visible_text(page(owner, path))
    over = post(owner, path, tasks_form([("A", "5,000.00"), ("B", "4,000.00")], op="refresh"))
    assert over.status_code == 200
    assert "Total $9,000.00 of $8,800.00: $200.00 too much." in visible_text(over.get_data(as_text=True))


# --- sending, accepting ----------------------------------------------------------------------------------------------


def test_the_send_action_shows_the_advance_the_tasks_and_the_final_payment(owner, world, act_as):
    engagement_id = completion_draft(act_as, party(world), tasks=("3,000.00", "5,800.00"))
    html = page(owner, f"/engagements/{engagement_id}")
    assert "send" in actions_offered(html, engagement_id)
    text = visible_text(html)
    assert "Contract value $10,000.00" in text and "Advance (12%) $1,200.00" in text
    assert "Fit-out task 1 $3,000.00" in text and "Fit-out task 2 $5,800.00" in text
    assert "the final payment is authorized automatically when the last task is approved" in text.lower()
    assert "I confirm the advance of $1,200.00 is authorized for payment when the contractor accepts" in text
    assert re.search(r'<input type="checkbox" id="confirm_advance" name="confirm_advance"', html)


def test_sending_without_confirming_the_advance_is_refused_at_the_checkbox_and_nothing_is_sent(
    owner, world, admin_engine, act_as
):
    engagement_id = completion_draft(act_as, party(world))
    response = post(owner, f"/engagements/{engagement_id}/send", {}, token_from=f"/engagements/{engagement_id}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Confirm the advance of $1,200.00" in field_error(html, "confirm_advance")
    assert re.search(r"<details class=\"dropdown\" open>\s*<summary role=\"button\">Send the work request…", html)
    row = completion_row(admin_engine, engagement_id)
    assert (row["status"], row["advance_confirmed_by"]) == ("draft", None)


def test_sending_with_the_advance_confirmed_sends_it_and_records_who_confirmed(owner, world, admin_engine, act_as):
    engagement_id = completion_draft(act_as, party(world))
    response = post(
        owner,
        f"/engagements/{engagement_id}/send",
        {"confirm_advance": "120000"},
        token_from=f"/engagements/{engagement_id}",
    )
    html = followed(owner, response, f"/engagements/{engagement_id}")
    assert any(
        "The advance of $1,200.00 is authorized for payment when the contractor accepts" in f for f in flashes(html)
    )
    row = completion_row(admin_engine, engagement_id)
    assert (row["status"], row["advance_confirmed_by"]) == ("awaiting_acceptance", world.owner.id)


def test_the_contractor_reads_the_advance_and_tasks_then_accepting_authorizes_the_advance(
    app, login, owner, world, admin_engine, act_as
):
    engagement_id = completion_draft(act_as, party(world), tasks=("3,000.00", "5,800.00"))
    post(
        owner,
        f"/engagements/{engagement_id}/send",
        {"confirm_advance": "120000"},
        token_from=f"/engagements/{engagement_id}",
    )
    contractor = signed_in(app, login, world.contractor_x_user)
    text = visible_text(page(contractor, f"/engagements/{engagement_id}"))
    assert "The advance of $1,200.00 (12% of the contract value) is authorized for payment when you accept" in text
    assert "Fit-out task 1 $3,000.00" in text and "Fit-out task 2 $5,800.00" in text
    assert "the final payment is authorized automatically when the last task is approved" in text.lower()
    # On a phone the tasks stack, one card a task, each value after its column's name.
    html = page(contractor, f"/engagements/{engagement_id}")
    terms = re.search(r'<table class="striped stack">.*?</table>', html, re.DOTALL)
    assert terms, "the tasks table stacks"
    first = re.search(r"<tbody>\s*<tr[^>]*>(.*?)</tr>", terms.group(0), re.DOTALL).group(1)
    assert re.findall(r'<td\b[^>]*\bdata-label="([^"]*)"', first) == ["#", "Task", "Amount"]
    response = post(contractor, f"/engagements/{engagement_id}/accept", {}, token_from=f"/engagements/{engagement_id}")
    html = followed(contractor, response, f"/engagements/{engagement_id}")
    assert "Work request accepted. Advance $1,200.00 authorized." in flashes(html)
    assert [(i["kind"], i["gross_minor"]) for i in completion_invoices(admin_engine, engagement_id)] == [
        ("advance", 120_000)
    ]
    assert engagement_row(admin_engine, engagement_id).status == "active"
    # Approving the last task completes it; nobody marks it completed by hand.
    assert "complete" not in actions_offered(page(owner, f"/engagements/{engagement_id}"), engagement_id)


def test_a_completion_engagement_without_an_advance_sends_without_a_confirmation(owner, world, admin_engine, act_as):
    engagement_id = completion_draft(act_as, party(world), advance="0", tasks=("10,000.00",))
    html = page(owner, f"/engagements/{engagement_id}")
    assert 'name="confirm_advance"' not in html
    response = post(owner, f"/engagements/{engagement_id}/send", {}, token_from=f"/engagements/{engagement_id}")
    assert response.status_code == 303
    assert completion_row(admin_engine, engagement_id)["status"] == "awaiting_acceptance"


# --- the organization's settings -------------------------------------------------------------------------------------


def settings_form(**overrides) -> dict:
    data = {
        "name": "Org A renamed",
        "default_currency": "USD",
        "default_retainage": "10",
        "payment_terms_days": "30",
        "partial_policy": "route_back",
        "evidence_max_files": "20",
        "evidence_max_file_mb": "25",
        "evidence_max_submission_mb": "100",
        "advances_enabled": "y",
        "default_advance": "12",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def org_advances(admin_engine, org_id) -> tuple:
    (row,) = owner_query(
        admin_engine, "select advances_enabled, default_advance_bps from organizations where id = :o", o=org_id
    )
    return row["advances_enabled"], row["default_advance_bps"]


def test_the_settings_page_shows_the_advance_settings(admin):
    html = page(admin, "/admin/settings")
    assert "Advances on completion billing" in visible_text(html)
    assert re.search(r'<input\b(?=[^>]*\bchecked\b)(?=[^>]*id="advances_enabled")[^>]*>', html)
    assert input_value(html, "default_advance") == "12"


def test_an_admin_switches_advances_off_and_new_terms_take_none(admin, owner, world, admin_engine):
    response = post(admin, "/admin/settings", settings_form(advances_enabled=None, default_advance="15"))
    assert response.status_code == 303
    assert org_advances(admin_engine, world.org_a) == (False, 1500)
    assert "This organization pays no advances" in visible_text(page(owner, "/engagements/new"))
    response = post(admin, "/admin/settings", settings_form(default_advance="7.5"))
    assert response.status_code == 303
    assert org_advances(admin_engine, world.org_a) == (True, 750)


@pytest.mark.parametrize(
    ("typed", "message"),
    [("60", "An advance is between 0% and 50% of the contract value."), ("lots", "Enter a percentage"), ("1\x00", "")],
)
def test_a_bad_default_advance_is_refused_at_its_field(admin, world, admin_engine, typed, message):
    response = post(admin, "/admin/settings", settings_form(default_advance=typed))
    assert response.status_code == 422
    assert message in (field_error(response.get_data(as_text=True), "default_advance") or "missing")
    assert org_advances(admin_engine, world.org_a) == (True, 1200)


def test_a_settings_form_without_the_advance_fields_keeps_them(admin, world, admin_engine):
    set_org(admin_engine, world.org_a, default_advance_bps=900)
    data = settings_form(advances_enabled=None, default_advance=None)
    response = admin.post("/admin/settings", data={**data, "csrf_token": csrf_token(admin, "/admin/settings")})
    assert response.status_code == 303
    assert org_advances(admin_engine, world.org_a) == (True, 900)
