"""The staff home pages show figures, each counted by the rule of the list it links to: following a figure's
link lands on a list whose count or total is that figure. Empty states say what will appear; a contractor's
home shows none of the staff figures."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

from kit.engagements import acting, set_due_date
from kit.money_pages import active_engagement, approve, approved_engagement, date_back, milestone_ids, pay_as
from kit.web import csrf_token, invite, signed_in, visible_text

from backoffice.services import holds as hold_service
from backoffice.services import submissions as submission_service

ROWS = (
    ("Survey", "Site survey", "1,000.00", "2030-01-15"),
    ("Frame", "Frame up", "2,000.00", "2030-02-15"),
    ("Roof", "Roof on", "3,000.00", "2030-03-15"),
)


def figure(html: str, key: str) -> tuple[str, str]:
    """(the card's visible text, its link) of the figure card ``fig-<key>``."""
    match = re.search(rf'<article[^>]*aria-labelledby="fig-{key}-title">(.*?)</article>', html, re.S)
    assert match, f"no figure card fig-{key}"
    link = re.search(r'<footer><a href="([^"]+)"', match.group(1))
    return visible_text(match.group(1)), unescape(link.group(1))


def values(card_text: str) -> list[str]:
    return re.findall(r"\$[\d,]+\.\d\d", card_text)


def queue_total(client, href: str) -> str:
    """The USD net total the payment queue shows at ``href`` ('' for an empty queue)."""
    html = client.get(href).get_data(as_text=True)
    match = re.search(r'<p class="stat-figure">([^<]+)</p>', html)
    return unescape(match.group(1)) if match else ""


def submit(app_sessions, world, milestone_id) -> None:
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        submission_service.submit_work(
            session,
            actor,
            milestone_id,
            submission_service.SubmissionInput(note="Done.", links="https://example.com/work", files=[]),
        )


def test_an_owners_figures_equal_the_review_queue_the_due_list_and_the_engagement_list(
    app, login, world, app_sessions, admin_engine
):
    engagement = active_engagement(app_sessions, world, title="Barn conversion", rows=ROWS, retainage="0")
    survey, frame, roof = milestone_ids(admin_engine, engagement)
    set_due_date(admin_engine, survey, date.today() - timedelta(days=3))  # overdue
    set_due_date(admin_engine, frame, date.today())  # due today: this week
    submit(app_sessions, world, frame)  # waiting for the owner's decision
    invoice = approve(app_sessions, world, roof)  # $3,000.00 approved, then paid
    client = signed_in(app, login, world.owner)
    html = client.get("/").get_data(as_text=True)

    reviews, href = figure(html, "reviews")
    assert reviews.startswith("Reviews waiting 1 submitted milestone is waiting for a decision on your engagements.")
    queue = client.get(href).get_data(as_text=True)
    assert queue.count('href="/milestones/') == 1 and f"/milestones/{frame}" in queue

    week, href = figure(html, "due-week")
    assert "Due this week 1 milestone of running engagements due today through" in week
    overdue, _ = figure(html, "overdue")
    assert "Overdue 1 milestone past its due date" in overdue
    due = client.get(href).get_data(as_text=True)
    assert due.count("badge-overdue") == 1  # the Due list marks the one overdue milestone

    committed, href = figure(html, "committed-usd")
    assert values(committed) == ["$6,000.00"]
    listed = visible_text(client.get(href).get_data(as_text=True))
    assert "Barn conversion" in listed and "$6,000.00" in listed  # the list's contract value column
    approved, href = figure(html, "approved-usd")
    assert values(approved) == ["$3,000.00", "$0.00"]  # approved not paid, paid so far
    listed = visible_text(client.get(href).get_data(as_text=True))
    assert "$3,000.00" in listed  # the list's Approved column

    pay_as(app_sessions, world.finance, world.org_a, invoice)
    approved, _ = figure(client.get("/").get_data(as_text=True), "approved-usd")
    assert values(approved) == ["$0.00", "$3,000.00"]


def test_a_finance_homes_payable_buckets_add_up_to_the_payment_queue_they_link_to(
    app, login, world, app_sessions, admin_engine
):
    _, (design, build) = approved_engagement(app_sessions, admin_engine, world, retainage="10", terms="30")
    date_back(admin_engine, [design], 40)  # due ten days ago
    client = signed_in(app, login, world.finance)
    html = client.get("/").get_data(as_text=True)

    overdue, href = figure(html, "overdue")
    # Design: $1,234.55 less 10% retainage ($123.46) is $1,111.09 net.
    assert values(overdue) == ["$1,111.09"] and "1 payment due before today" in overdue
    assert "due_before=" in href and queue_total(client, href) == "$1,111.09"
    later = [figure(html, key) for key in ("this-week", "this-month", "later")]
    # Build: $2,000.05 less $200.01 is $1,800.04 net, due in 30 days: this month or later.
    assert sorted(v for text_, _ in later for v in values(text_)) == ["$0.00", "$0.00", "$1,800.04"]
    assert sorted(queue_total(client, href) for _, href in later) == ["", "", "$1,800.04"]

    retainage, href = figure(html, "retainage")
    assert values(retainage) == ["$323.47"]
    assert "$323.47" in visible_text(client.get(href).get_data(as_text=True))

    blocked, href = figure(html, "blocked")
    assert "Blocked payments 0" in blocked
    with acting(app_sessions, world.finance, world.org_a) as (session, actor):
        hold_service.hold_invoice(session, actor, build, "Waiting for the lien waiver.")
    blocked, href = figure(client.get("/").get_data(as_text=True), "blocked")
    assert "Blocked payments 1 $1,800.04" in blocked
    assert queue_total(client, href) == "$1,800.04"


def queue_count(client, href: str) -> int:
    """How many payments the payment queue at ``href`` lists, by its totals (0 for an empty queue)."""
    html = client.get(href).get_data(as_text=True)
    match = re.search(r"USD · (\d+) payments?", html)
    return int(match.group(1)) if match else 0


def card_count(card_text: str) -> int:
    match = re.search(r"(\d+) payments? due", card_text)
    return int(match.group(1)) if match else 0


def test_each_payable_bucket_equals_the_payment_queue_list_it_links_to_in_count_and_total(
    app, login, world, app_sessions, admin_engine
):
    # Payments at each bucket's edges: yesterday (overdue); today and Sunday (this week); the Monday after and
    # the month's last day (later this month, when the month outlasts the week); the day after both (later).
    # Each invoice is $100.00 net (no retainage), due in 30 days, then moved to its day.
    today = date.today()
    sunday = today + timedelta(days=6 - today.weekday())
    month_end = (today.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    days = [today - timedelta(days=1), today, sunday]
    if month_end > sunday:
        days += [sunday + timedelta(days=1), month_end]
    days.append(max(sunday, month_end) + timedelta(days=1))
    rows = tuple((f"Task {n}", f"Task {n} done", "100.00", "2030-01-15") for n in range(len(days)))
    _, invoices = approved_engagement(
        app_sessions, admin_engine, world, rows=rows, retainage="0", terms="30", title="Edges"
    )
    for invoice, day in zip(invoices, days, strict=True):
        date_back(admin_engine, [invoice], (today + timedelta(days=30) - day).days)
    expected = {
        "overdue": 1,
        "this-week": 2,  # on a Sunday both fall on today, the week's last day
        "this-month": 2 if month_end > sunday else 0,
        "later": 1,
    }
    client = signed_in(app, login, world.finance)
    html = client.get("/").get_data(as_text=True)
    _, this_week = figure(html, "this-week")
    assert f"due_from={today.isoformat()}" in this_week and f"due_before={sunday.isoformat()}" in this_week
    # The queue's filter form carries the lower bound, so changing another filter keeps it.
    queue = client.get(this_week).get_data(as_text=True)
    assert f'<input type="hidden" name="due_from" value="{today.isoformat()}">' in queue
    for key, count in expected.items():
        card, href = figure(html, key)
        total = f"${count * 100:,}.00"
        assert (card_count(card), values(card)) == (count, [total]), key
        assert queue_count(client, href) == count, key  # the list's count and total are the card's
        assert queue_total(client, href) == ("" if count == 0 else total), key
        downloaded = client.get(href.replace("/payments/", "/downloads/payments.csv"))
        assert downloaded.get_data(as_text=True).count("Task ") == count, key  # the CSV lists the same rows
        if count:
            selected = visible_text(client.get(href + "&select=matching").get_data(as_text=True))
            assert f"All {count} matching payment{'' if count == 1 else 's'} selected, {total} total." in selected


def test_a_due_from_date_the_queue_cannot_read_is_dropped_with_a_note(app, login, world):
    response = signed_in(app, login, world.finance).get("/payments/", query_string={"due_from": "31/12/2030\x00"})
    assert response.status_code == 200
    assert "Due on or after: Enter the date as YYYY-MM-DD; the filter was ignored." in visible_text(
        response.get_data(as_text=True)
    )


def test_the_cash_out_chart_has_a_bar_per_week_and_a_table_naming_every_value(
    app, login, world, app_sessions, admin_engine
):
    _, (design, _build) = approved_engagement(app_sessions, admin_engine, world, retainage="10", terms="30")
    date_back(admin_engine, [design], 40)
    html = signed_in(app, login, world.finance).get("/").get_data(as_text=True)
    svg = re.search(r'<svg role="img"[^>]*>.*?</svg>', html, re.S).group(0)
    assert 'aria-labelledby="cash-out-usd-title"' in svg and 'aria-describedby="cash-out-usd-table"' in svg
    assert '<title id="cash-out-usd-title">Cash out by week, USD: net amounts due</title>' in svg
    table = re.search(r'<table class="chart-table[^"]*" id="cash-out-usd-table">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th><td class=\"num\">(.*?)</td></tr>", table, re.S)
    assert len(rows) == 9  # overdue, this week and seven more
    assert rows[0] == ("Overdue", "$1,111.09")
    assert rows[1][0].startswith("This week")
    assert sum(1 for _, v in rows if v == "$0.00") == 7  # Build falls in one of the weeks after this one
    assert svg.count("<rect") == 2  # a bar for each amount above zero


def test_an_admins_figures_count_pending_invitations_failed_emails_and_say_when_the_chain_was_checked(
    app, login, world
):
    client = signed_in(app, login, world.admin)
    invite(client, email=f"new-{world.suffix}@example.com", name="Nia New", role="finance")
    html = client.get("/").get_data(as_text=True)
    invitations, href = figure(html, "invitations")
    assert "Pending invitations 1" in invitations
    assert client.get(href).get_data(as_text=True).count("badge-pending") == 1
    failed, href = figure(html, "failed-emails")
    assert "Failed emails 0 Every email went out" in failed and href == "/admin/outbox/?status=failed"
    chain, _ = figure(html, "audit")
    assert "Audit trail Not checked" in chain

    client.post("/audit/verify", data={"heads": "", "csrf_token": csrf_token(client, "/audit/")})
    chain, _ = figure(client.get("/").get_data(as_text=True), "audit")
    assert "Audit trail Intact last checked" in chain


def test_empty_homes_say_what_will_appear(app, login, world):
    owner = visible_text(signed_in(app, login, world.owner).get("/").get_data(as_text=True))
    assert "Reviews waiting 0 Nothing waits for your decision." in owner
    assert "No engagements of yours yet" in owner
    finance = visible_text(signed_in(app, login, world.finance).get("/").get_data(as_text=True))
    assert "Nothing to pay: approved work arrives in the payment queue." in finance
    assert "Nothing stops a payment." in finance and "Cash out by week" not in finance


def test_a_contractor_never_sees_staff_figures(app, login, world, app_sessions, admin_engine):
    approved_engagement(app_sessions, admin_engine, world)
    html = signed_in(app, login, world.contractor_x_user).get("/").get_data(as_text=True)
    assert "Your payments" in html and "Due next" in html
    for staff in ("figure-card", "Reviews waiting", "Blocked payments", "Retainage held", "Pending invitations"):
        assert staff not in html
