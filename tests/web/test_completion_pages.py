"""The pages of completion billing (issue 20; DESIGN.md section 4, "Completion billing"): the engagement page's
completion schedule for the owner, finance and the contractor at each stage, the contractor raising an invoice for
its approved tasks (GET/POST /engagements/<id>/invoice-tasks), its home saying what can be invoiced, and invoice
pages naming what an invoice is for. Every amount is checked to the cent; bad input is a 4xx with nothing written.

The example: a contract of $10,000.00 with a 12% advance ($1,200.00) and three tasks sharing $8,800.00; the
organization's defaults withhold 10% retainage and charge no fee."""

from __future__ import annotations

import re

from kit.completion import (
    accept,
    approve_task,
    completion_draft,
    completion_engagement,
    completion_invoices,
    raise_invoice,
    send,
)
from kit.engagements import engagement_row, sign_in
from kit.money import active_engagement, party
from kit.web import csrf_token, field_error, flashes, htmx_post, signed_in, table_row, visible_text

from backoffice.services import approvals

TASKS = ("3,000.00", "3,000.00", "2,800.00")


def panel(client, engagement_id) -> str:
    """The completion panel of the engagement page, as text."""
    response = client.get(f"/engagements/{engagement_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    section = re.search(r'<section id="completion".*?</section>', html, re.DOTALL)
    assert section, "the completion panel"
    return section.group(0)


def row_text(html: str, start: str) -> str:
    """The text of the first table row that starts with ``start``."""
    for row in re.findall(r"<tr\b.*?</tr>", html, re.DOTALL):
        if visible_text(row).startswith(start):
            return visible_text(row)
    raise AssertionError(f"no row starting {start!r}")


def raise_page(engagement_id) -> str:
    return f"/engagements/{engagement_id}/invoice-tasks"


def post_raise(client, engagement_id, tasks, **extra):
    token = csrf_token(client, f"/engagements/{engagement_id}")
    return client.post(raise_page(engagement_id), data={"tasks": [str(t) for t in tasks], "csrf_token": token, **extra})


def billed_tasks(html: str) -> str:
    """The text of an invoice page's table of the tasks it bills."""
    return visible_text(re.search(r'<table class="striped invoice-tasks".*?</table>', html, re.DOTALL).group(0))


def amounts(html: str) -> dict[str, str]:
    # The raise form's table stacks on a phone: each amount under its row's header, which names it (so no
    # data-label of its own); an invoice page's does not.
    table = re.search(r'<table class="amounts(?: stack)?">.*?</table>', html, re.DOTALL)
    assert table, "the amounts table"
    return {
        visible_text(th): visible_text(td)
        for th, td in re.findall(
            r'<th scope="row">(.*?)</th><td class="num"(?: data-label="")?>(.*?)</td>', table.group(0), re.DOTALL
        )
    }


def ticked(html: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="tasks" value="([^"]+)" checked', html)


def test_a_draft_shows_the_advance_to_come_and_the_final_payment_as_things_stand(app, login, world, act_as):
    p = party(world)
    engagement_id = completion_draft(act_as, p, tasks=TASKS)
    html = panel(signed_in(app, login, world.owner), engagement_id)
    text = visible_text(html)
    assert "Contract value $10,000.00" in text and "Advance (12%) $1,200.00" in text
    assert "Invoiced so far $0.00" in text and "Remaining to invoice $10,000.00" in text
    assert row_text(html, "Advance (12%)") == (
        "Advance (12%) Authorized when the contractor accepts the work request $1,200.00"
    )
    assert row_text(html, "1. Fit-out task 1") == "1. Fit-out task 1 Planned Not yet approved $3,000.00"
    assert row_text(html, "Final payment") == (
        "Final payment Authorized automatically when the last task is approved: $8,800.00 as things stand $8,800.00"
    )


def test_owner_finance_and_contractor_see_the_advance_authorized_at_acceptance(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id = completion_draft(act_as, p, tasks=TASKS)
    send(act_as, p, engagement_id)
    accept(act_as, p, engagement_id)
    (advance,) = completion_invoices(admin_engine, engagement_id)
    for person in (world.owner, world.finance, world.contractor_x_user):
        html = panel(signed_in(app, login, person), engagement_id)
        text = visible_text(html)
        assert "Invoiced so far $1,200.00" in text and "Remaining to invoice $8,800.00" in text, person.name
        assert row_text(html, "Advance (12%)") == (
            f"Advance (12%) Authorized when {_contractor(world)} accepted {advance['invoice_number']} Authorized "
            "$1,200.00"
        )
        assert f'href="/invoices/{advance["id"]}"' in html
        assert "as things stand $8,800.00" in text
    # The engagement's totals count the advance in the contract value and as approved for payment.
    page = visible_text(signed_in(app, login, world.owner).get(f"/engagements/{engagement_id}").get_data(as_text=True))
    assert "Contract value $10,000.00 Approved $1,200.00 Paid $0.00" in page


def _contractor(world) -> str:
    return f"Contractor X {world.suffix}"


def test_an_approved_task_is_offered_to_the_contractor_and_shown_to_staff(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])

    contractor = panel(signed_in(app, login, world.contractor_x_user), engagement_id)
    assert "1 approved task can be invoiced: $3,000.00 — Raise invoice" in visible_text(contractor)
    assert f'href="/engagements/{engagement_id}/invoice-tasks"' in contractor
    assert (
        row_text(contractor, "1. Fit-out task 1")
        == "1. Fit-out task 1 Approved Not yet invoiced · Invoice it $3,000.00"
    )

    owner = panel(signed_in(app, login, world.owner), engagement_id)
    assert "1 approved task not yet invoiced: $3,000.00." in visible_text(owner)
    assert "invoice-tasks" not in owner  # not theirs to raise
    assert row_text(owner, "1. Fit-out task 1") == "1. Fit-out task 1 Approved Not yet invoiced $3,000.00"
    # Approving a task authorized nothing: still only the advance is invoiced.
    assert "Invoiced so far $1,200.00" in visible_text(owner)


def test_the_contractor_raises_an_invoice_and_it_appears_everywhere(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    client = signed_in(app, login, world.contractor_x_user)

    home = visible_text(client.get("/").get_data(as_text=True))
    assert "2 approved tasks on Fit-out can be invoiced: $6,000.00 — Raise invoice" in home

    page = client.get(raise_page(engagement_id)).get_data(as_text=True)
    assert sorted(ticked(page)) == sorted(str(t) for t in tasks[:2])  # all ticked by default
    assert amounts(page) == {
        "Gross (2 tasks)": "$6,000.00",
        "Retainage withheld (10%)": "− $600.00",
        "Net payable to you": "$5,400.00",
    }
    assert '<table class="amounts stack">' in page  # one amount a row on a phone
    assert "Raise invoice for $6,000.00" in page

    # Unticking one re-asks the amounts; nothing is written.
    refreshed = post_raise(client, engagement_id, [tasks[1]], op="refresh")
    assert refreshed.status_code == 200
    assert amounts(refreshed.get_data(as_text=True))["Gross (1 task)"] == "$3,000.00"
    assert ticked(refreshed.get_data(as_text=True)) == [str(tasks[1])]
    fragment = htmx_post(
        client,
        raise_page(engagement_id),
        {"tasks": [str(tasks[0])], "op": "refresh"},
        token_from=raise_page(engagement_id),
    ).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="invoice-tasks"')  # htmx swaps the form in place
    assert "Raise invoice for $3,000.00" in fragment
    assert len(completion_invoices(admin_engine, engagement_id)) == 1

    response = post_raise(client, engagement_id, tasks[:2])
    assert response.status_code == 303
    _, raised = completion_invoices(admin_engine, engagement_id)
    assert (raised["kind"], raised["gross_minor"], raised["retainage_minor"], raised["net_minor"]) == (
        "completion",
        600_000,
        60_000,
        540_000,
    )
    assert sorted(raised["tasks"]) == sorted(tasks[:2])
    assert response.headers["Location"] == f"/invoices/{raised['id']}"
    invoice_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Invoice {raised['invoice_number']} raised for $6,000.00." in " ".join(flashes(invoice_page))

    html = panel(client, engagement_id)
    text = visible_text(html)
    assert "Invoiced so far $7,200.00" in text and "Remaining to invoice $2,800.00" in text
    assert row_text(html, "2. Fit-out task 2") == (
        f"2. Fit-out task 2 Approved {raised['invoice_number']} Authorized Completed tasks $3,000.00"
    )
    assert "can be invoiced" not in text
    assert "as things stand $2,800.00" in text
    assert "can be invoiced" not in visible_text(client.get("/").get_data(as_text=True))
    # Finance and the owner see the same figures.
    for person in (world.owner, world.finance):
        assert "Invoiced so far $7,200.00" in visible_text(panel(signed_in(app, login, person), engagement_id))


def test_the_last_approval_shows_the_final_payment_and_the_engagement_completed(
    app, login, world, act_as, admin_engine
):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    raised = raise_invoice(act_as, p, engagement_id, tasks[:2])
    approve_task(act_as, p, tasks[2])
    assert engagement_row(admin_engine, engagement_id).status == "completed"
    advance, _, final = completion_invoices(admin_engine, engagement_id)

    for person in (world.owner, world.finance, world.contractor_x_user):
        client = signed_in(app, login, person)
        html = panel(client, engagement_id)
        text = visible_text(html)
        assert "Invoiced so far $10,000.00" in text and "Remaining to invoice $0.00" in text, person.name
        assert row_text(html, "Final payment") == (
            f"Final payment Authorized when the last task was approved {final['invoice_number']} Authorized $2,800.00"
        )
        assert row_text(html, "3. Fit-out task 3") == (
            f"3. Fit-out task 3 Approved {final['invoice_number']} Authorized Final payment $2,800.00"
        )
        assert row_text(html, "1. Fit-out task 1").startswith(f"1. Fit-out task 1 Approved {raised['invoice_number']}")

        page = client.get(f"/invoices/{final['id']}").get_data(as_text=True)
        head = visible_text(re.search(r"<hgroup>.*?</hgroup>", page, re.DOTALL).group(0))
        assert "Final payment · payment to" in head
        assert "Gross (the tasks left) $2,800.00" in visible_text(page)
        tasks_table = billed_tasks(page)
        assert tasks_table == "3. Fit-out task 3 $2,800.00"

    page = signed_in(app, login, world.finance).get(f"/invoices/{raised['id']}").get_data(as_text=True)
    assert "Completed tasks · payment to" in visible_text(page)
    tasks_table = billed_tasks(page)
    assert tasks_table == "1. Fit-out task 1 $3,000.00 2. Fit-out task 2 $3,000.00"
    assert f"Raised by {world.contractor_x_user.name}" in visible_text(page)

    page = signed_in(app, login, world.finance).get(f"/invoices/{advance['id']}").get_data(as_text=True)
    assert "Advance · payment to" in visible_text(page)
    assert amounts(page)["Gross (paid ahead of work)"] == "$1,200.00"
    assert "invoice-tasks" not in page


def test_invoice_lists_name_the_kind_and_the_tasks(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])
    raised = raise_invoice(act_as, p, engagement_id, tasks[:1])
    advance = completion_invoices(admin_engine, engagement_id)[0]

    queue = signed_in(app, login, world.finance).get(f"/payments/?engagement_id={engagement_id}&status=all")
    html = queue.get_data(as_text=True)
    assert "Completed tasks: Fit-out task 1" in visible_text(table_row(html, raised["invoice_number"]))
    assert "Fit-out Advance" in visible_text(table_row(html, advance["invoice_number"]))
    assert "None" not in visible_text(html)

    mine = signed_in(app, login, world.contractor_x_user).get("/invoices/").get_data(as_text=True)
    assert "Fit-out Completed tasks: Fit-out task 1" in visible_text(table_row(mine, raised["invoice_number"]))
    assert "Fit-out Advance" in visible_text(table_row(mine, advance["invoice_number"]))
    assert "None" not in visible_text(mine)

    owner = signed_in(app, login, world.owner)
    listing = visible_text(owner.get("/engagements").get_data(as_text=True))
    # The list counts the advance in the contract value, and it and the approved task as approved for payment.
    assert "$10,000.00 3 tasks $4,200.00 $0.00 $300.00 $5,800.00" in listing
    due = owner.get("/engagements/due")
    assert due.status_code == 200 and "Fit-out task 2" in visible_text(due.get_data(as_text=True))
    report = signed_in(app, login, world.finance).get("/retainage/")
    assert report.status_code == 200
    assert "Fit-out" in visible_text(table_row(report.get_data(as_text=True), "Fit-out"))
    assert "$300.00" in visible_text(table_row(report.get_data(as_text=True), "Fit-out"))


def test_raising_with_no_task_is_refused_at_the_field(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])
    client = signed_in(app, login, world.contractor_x_user)
    response = post_raise(client, engagement_id, [])
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "tasks") == "Choose at least one approved task to invoice."
    assert len(completion_invoices(admin_engine, engagement_id)) == 1


def test_raising_for_a_task_not_waiting_to_be_invoiced_is_refused_and_writes_nothing(
    app, login, world, act_as, admin_engine
):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    other_id, other_tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS, title="Roofing")
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, other_tasks[0])
    client = signed_in(app, login, world.contractor_x_user)
    for chosen, status, words in (
        # not a task of this engagement at all: the form's input is wrong (422, at the field)
        ([tasks[0], other_tasks[0]], 422, "Choose among the approved tasks listed on this page."),
        ([f"{tasks[0]}\x00"], 422, "Choose among the approved tasks listed on this page."),  # a NUL byte
        (["\x00"], 422, "Choose among the approved tasks listed on this page."),
        (["not-a-task"], 422, "Choose among the approved tasks listed on this page."),
        # a task of this engagement that is not waiting to be invoiced (here: not approved): 409
        ([tasks[1]], 409, "no longer waiting to be invoiced"),
    ):
        response = post_raise(client, engagement_id, chosen)
        assert response.status_code == status, (chosen, response.status_code)
        assert words in visible_text(response.get_data(as_text=True))
    assert len(completion_invoices(admin_engine, engagement_id)) == 1
    assert len(completion_invoices(admin_engine, other_id)) == 1


def test_tasks_invoiced_meanwhile_are_a_conflict_shown_on_the_page(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    client = signed_in(app, login, world.contractor_x_user)
    token = csrf_token(client, raise_page(engagement_id))  # the page was read ...
    raise_invoice(act_as, p, engagement_id, tasks[:1])  # ... and task 1 invoiced in another tab
    response = client.post(
        raise_page(engagement_id), data={"tasks": [str(tasks[0]), str(tasks[1])], "csrf_token": token}
    )
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "no longer waiting to be invoiced" in visible_text(html)
    assert ticked(html) == [str(tasks[1])]  # what is still invoiceable of what was chosen
    assert amounts(html)["Gross (1 task)"] == "$3,000.00"
    assert len(completion_invoices(admin_engine, engagement_id)) == 2


def test_only_the_engagements_contractor_reaches_the_raise_page(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])
    for person, status in (
        (world.owner, 403),
        (world.finance, 403),
        (world.admin, 403),
        (world.contractor_y_user, 404),  # another contractor of the organization
        (world.contractor_z_user, 404),  # another organization's
    ):
        client = signed_in(app, login, person)
        assert client.get(raise_page(engagement_id)).status_code == status, person.name
        token = csrf_token(client, "/")
        posted = client.post(raise_page(engagement_id), data={"tasks": [str(tasks[0])], "csrf_token": token})
        assert posted.status_code == status, person.name
    assert len(completion_invoices(admin_engine, engagement_id)) == 1

    contractor = signed_in(app, login, world.contractor_x_user)
    assert contractor.get(raise_page(f"{engagement_id}\x00")).status_code == 404
    assert contractor.get(raise_page("not-an-id")).status_code == 404
    milestone_engagement, _ = active_engagement(act_as, admin_engine, p)
    assert contractor.get(raise_page(milestone_engagement)).status_code == 404


def test_nothing_to_invoice_says_so(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, _ = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    html = signed_in(app, login, world.contractor_x_user).get(raise_page(engagement_id)).get_data(as_text=True)
    assert "No approved task is waiting to be invoiced." in visible_text(html)
    assert 'name="tasks"' not in html


def set_policy(act_as, world, minimum: str) -> None:
    """Payments of ``minimum`` or more wait for finance's approval (issue 18)."""
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(
        session, actor, approvals.PolicyInput("Large", "USD", minimum, [approvals.StepInput(role="finance")])
    )


def test_retainage_waits_for_a_final_payment_awaiting_approval_before_its_release(
    app, login, world, act_as, admin_engine
):
    """A release pays what every live authorization withheld; a final payment still awaiting its approval steps may
    yet be rejected (withholding nothing), so the release waits for it, as it does for a milestone's."""
    set_policy(act_as, world, "5,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    for task in tasks:
        approve_task(act_as, p, task)
    final = completion_invoices(admin_engine, engagement_id)[1]
    assert (final["kind"], final["gross_minor"], final["status"]) == ("final", 880_000, "pending_approval")

    owner = signed_in(app, login, world.owner)
    html = panel(owner, engagement_id)
    assert row_text(html, "Final payment") == (
        f"Final payment Authorized when the last task was approved {final['invoice_number']} Awaiting approval "
        "$8,800.00"
    )
    token = csrf_token(owner, f"/engagements/{engagement_id}")
    response = owner.post(
        f"/engagements/{engagement_id}/retainage/release",
        data={"release_reason": "Early, by agreement.", "csrf_token": token},
    )
    assert response.status_code == 409
    assert f"{final['invoice_number']} of this engagement awaits approval" in visible_text(
        response.get_data(as_text=True)
    )
    assert [i["kind"] for i in completion_invoices(admin_engine, engagement_id)] == ["advance", "final"]


def test_an_invoice_raised_under_an_approval_policy_awaits_its_steps(app, login, world, act_as, admin_engine):
    set_policy(act_as, world, "5,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    response = post_raise(signed_in(app, login, world.contractor_x_user), engagement_id, tasks[:2])
    assert response.status_code == 303
    assert completion_invoices(admin_engine, engagement_id)[1]["status"] == "pending_approval"


def test_the_raise_page_shows_the_fee_the_organization_pays_on_top(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS, service_fee="2.5")
    approve_task(act_as, p, tasks[2])
    page = signed_in(app, login, world.contractor_x_user).get(raise_page(engagement_id)).get_data(as_text=True)
    assert amounts(page) == {
        "Gross (1 task)": "$2,800.00",
        "Retainage withheld (10%)": "− $280.00",
        "Net payable to you": "$2,520.00",
        "Service fee the organization pays on top (2.5%)": "$70.00",
    }
