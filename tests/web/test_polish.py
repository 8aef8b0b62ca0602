"""The finish of every main page, as each person sees it: a title that says where you are, amounts
right-aligned with their currency, moments and days as <time> with the exact date on hover, the same
status badges everywhere, empty lists that say what to do next, and a question before each irreversible
action.

The full pages are the demo's (seeded once per run, only read here), opened by its people; the pages
that list emails, notifications and receipts get rows from the tests' own organization, written by the
real worker. Empty states are read in a fresh organization where nothing has happened yet.
"""

from __future__ import annotations

import html as html_lib
import re
import uuid
from pathlib import Path

import pytest
from kit.jobs import run_jobs
from kit.money_pages import approved_engagement
from kit.web import csrf_token, invite_link_token, signed_in, visible_text
from sqlalchemy import text

ADMIN, OWNER, FINANCE = "admin@acme.example", "owner@acme.example", "finance@acme.example"
NINA, BEN = "nina@northwind.example", "ben@bluebird.example"

CSS = (Path(__file__).parents[2] / "backoffice" / "static" / "app.css").read_text()

# (who, path, the title before " · backoffice"): every main page, with the demo's rows in {placeholders}.
TITLES = [
    (OWNER, "/", "Home · Acme Renovations"),
    (OWNER, "/engagements", "Engagements"),
    (OWNER, "/engagements/{kitchen}", "Kitchen renovation, 14 Elm St · Engagements"),
    (OWNER, "/engagements/{lobby}", "Lobby refresh · Engagements"),
    (OWNER, "/engagements/new", "New engagement · Engagements"),
    (OWNER, "/engagements/{showroom}/terms", "Edit the terms · Showroom signage · Engagements"),
    (OWNER, "/engagements/{showroom}/milestones", "Edit milestones · Showroom signage · Engagements"),
    (OWNER, "/engagements/{showroom}/milestones/import", "Import milestones · Showroom signage · Engagements"),
    (
        OWNER,
        "/engagements/{kitchen}/change-orders/new",
        "Change order CO-{next_co} · Kitchen renovation, 14 Elm St · Engagements",
    ),
    (OWNER, "/engagements/due", "Due milestones"),
    (OWNER, "/reviews/", "Review queue"),
    (OWNER, "/milestones/{cabinetry}", "Cabinetry and countertops · Kitchen renovation, 14 Elm St · Engagements"),
    (OWNER, "/retainage/", "Retainage report"),
    (OWNER, "/notifications/", "Notifications"),
    (FINANCE, "/payments/", "Payment queue"),
    (FINANCE, "/invoices/{invoice}", "{invoice_number} · Payments"),
    (FINANCE, "/batches/", "AP export batches · Payments"),
    (FINANCE, "/batches/{batch}", "Batch {batch_number} · AP export batches · Payments"),
    (FINANCE, "/payments/remittance", "Import a remittance file · Payments"),
    (FINANCE, "/documents/", "Data room"),
    (FINANCE, "/audit/", "Audit trail"),
    (ADMIN, "/admin/members", "Users and roles · Admin"),
    (ADMIN, "/admin/contractors", "Contractors · Admin"),
    (ADMIN, "/admin/contractors/{northwind}", "Northwind Design Ltd · Contractors"),
    (ADMIN, "/admin/settings", "Settings · Admin"),
    (ADMIN, "/admin/settings/export", "AP export layout · Settings"),
    (ADMIN, "/admin/outbox/", "Outbox · Admin"),
    (NINA, "/invoices/", "Your payments"),
    (NINA, "/invoices/{paid_invoice}", "{paid_invoice_number} · Your payments"),
    (BEN, "/engagements/{rewiring}", "Office rewiring, 2nd floor · Engagements"),
    (None, "/login", "Sign in"),
    (None, "/password/forgot", "Forgot your password"),
]

# Pages whose tables hold money, and pages that show moments or days.
MONEY_PAGES = [
    (OWNER, "/engagements"),
    (OWNER, "/engagements/{kitchen}"),
    (OWNER, "/engagements/{lobby}"),
    (OWNER, "/engagements/due"),
    (OWNER, "/reviews/"),
    (OWNER, "/retainage/"),
    (FINANCE, "/payments/"),
    (FINANCE, "/payments/?status=all"),
    (FINANCE, "/invoices/{invoice}"),
    (FINANCE, "/invoices/{paid_invoice}"),
    (FINANCE, "/batches/"),
    (FINANCE, "/batches/{batch}"),
    (NINA, "/invoices/"),
]
DATE_PAGES = [
    (OWNER, "/engagements"),
    (OWNER, "/engagements/{kitchen}"),
    (OWNER, "/engagements/{lobby}"),
    (OWNER, "/engagements/{cancelled}"),
    (OWNER, "/engagements/due"),
    (OWNER, "/reviews/"),
    (OWNER, "/milestones/{cabinetry}"),
    (OWNER, "/milestones/{demolition}"),
    (OWNER, "/engagements/{kitchen}/change-orders/new"),
    (FINANCE, "/payments/?status=all"),
    (FINANCE, "/invoices/{paid_invoice}"),
    (FINANCE, "/batches/"),
    (FINANCE, "/batches/{batch}"),
    (FINANCE, "/batches/{voided_batch}"),
    (FINANCE, "/audit/"),
    (ADMIN, "/admin/members"),
    (ADMIN, "/admin/contractors"),
    (NINA, "/invoices/"),
    (NINA, "/milestones/{cabinetry}"),
]
MAIN_PAGES = sorted({(who, path) for who, path, _ in TITLES if who} | set(MONEY_PAGES) | set(DATE_PAGES))

MONEY_HEADER = re.compile(
    r"^(Amount|Gross|Net|Net payable|Retainage( withheld| held| \S+%)?|Contract value|Approved|Paid|"
    r"Remaining|Withheld|Released|Held|Total \(net\)|Debit|Credit)$"
)
AN_AMOUNT = re.compile(r"^[−-]?\s*(?:[$€£¥]|[A-Z]{3}\s?)\d[\d,]*(\.\d+)?")
# The exact moment in UTC, then (issue 22) the person's own clock when their time zone is another: the demo's owner
# reads his times in New York.
MOMENT_TITLE = re.compile(
    r"^[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d:\d\d UTC"
    r"( · ([A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4}, )?\d\d:\d\d in [A-Za-z_]+(/[A-Za-z_+\-]+)*)?$"
)
DAY_TITLE = re.compile(
    r"^[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4} · (today|tomorrow|yesterday|in \d+ days|\d+ days ago)$"
)
OLD_MOMENT = re.compile(r"\b\d{2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC\b")  # the plain filter's form


# --- reading pages ---------------------------------------------------------------------------------------


def title_of(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match, "a <title>"
    return html_lib.unescape(match.group(1).strip())


def classes(attrs: str) -> set[str]:
    match = re.search(r'\bclass="([^"]*)"', attrs)
    return set(match.group(1).split()) if match else set()


def table_cells(row: str) -> list[tuple[str, str]]:
    """A row's cells as (attributes, inner html)."""
    return [(attrs, inner) for _, attrs, inner in re.findall(r"<(td|th)\b([^>]*)>(.*?)</\1>", row, re.S)]


def money_problems(html: str) -> list[str]:
    """Money cells that are not right-aligned, or that show a number without its currency."""
    problems = []
    for table in re.findall(r"<table\b.*?</table>", html, re.S):
        head = re.search(r"<thead>.*?<tr>(.*?)</tr>", table, re.S)
        headers = [(attrs, visible_text(inner)) for attrs, inner in table_cells(head.group(1))] if head else []
        money_columns = {i for i, (_, label) in enumerate(headers) if MONEY_HEADER.match(label)}
        for i in money_columns:
            if "num" not in classes(headers[i][0]):
                problems.append(f"header {headers[i][1]!r} is not right-aligned")
        body = re.sub(r"<thead>.*?</thead>", "", table, flags=re.S)
        for row in re.findall(r"<tr\b.*?</tr>", body, re.S):
            cells = table_cells(row)
            for i, (attrs, inner) in enumerate(cells):
                shown = visible_text(inner)
                in_money_column = len(cells) == len(headers) and i in money_columns
                if (in_money_column or AN_AMOUNT.match(shown)) and shown and "num" not in classes(attrs):
                    problems.append(f"{shown!r} is not right-aligned")
                if in_money_column and shown and not AN_AMOUNT.match(shown):
                    problems.append(f"{shown!r} under {headers[i][1]!r} has no currency")
    return problems


def times(html: str) -> list[tuple[str, str, str]]:
    """Every <time> as (datetime attribute, title attribute, text)."""
    found = []
    for attrs, inner in re.findall(r"<time\b([^>]*)>(.*?)</time>", html, re.S):
        machine = re.search(r'\bdatetime="([^"]*)"', attrs)
        hover = re.search(r'\btitle="([^"]*)"', attrs)
        found.append(
            (
                machine.group(1) if machine else "",
                html_lib.unescape(hover.group(1)) if hover else "",
                visible_text(inner),
            )
        )
    return found


def time_problems(html: str) -> list[str]:
    problems = []
    for machine, hover, shown in times(html):
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", machine):
            if not MOMENT_TITLE.match(hover):
                problems.append(f"moment {machine}: hover {hover!r}")
        elif re.fullmatch(r"\d{4}-\d\d-\d\d", machine):
            if not DAY_TITLE.match(hover):
                problems.append(f"day {machine}: hover {hover!r}")
            if not re.fullmatch(r"\d\d [A-Z][a-z]{2} \d{4}", shown):
                problems.append(f"day {machine}: shown as {shown!r}")
        else:
            problems.append(f"<time> with datetime={machine!r}")
        if not shown:
            problems.append(f"<time datetime={machine!r}> shows nothing")
    main = re.search(r"<main\b.*?</main>", html, re.S).group(0)
    outside = visible_text(re.sub(r"<time\b.*?</time>", " ", main, flags=re.S))
    problems += [f"a plain moment outside <time>: {m!r}" for m in OLD_MOMENT.findall(outside)]
    return problems


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_rows(admin_engine, demo_data) -> dict[str, str]:
    """The demo rows the pages show (read as the owner role, never changed)."""
    with admin_engine.connect() as conn:

        def one(sql: str, **params) -> str:
            return str(conn.execute(text(sql), {"org": demo_data.acme, **params}).scalar_one())

        def engagement(title: str) -> str:
            return one("select id from engagements where org_id = :org and title = :t", t=title)

        rows = {
            "kitchen": engagement("Kitchen renovation, 14 Elm St"),
            "lobby": engagement("Lobby refresh"),
            "showroom": engagement("Showroom signage"),
            "rewiring": engagement("Office rewiring, 2nd floor"),
            "cancelled": one("select id from engagements where org_id = :org and status = 'cancelled' limit 1"),
            "northwind": one("select id from contractors where org_id = :org and legal_name = 'Northwind Design Ltd'"),
            # a member who is not the admin the pages are opened as: their change-role and remove forms
            "member": one(
                "select m.id from memberships m join users u on u.id = m.user_id"
                " where m.org_id = :org and m.role = 'finance' order by u.email limit 1"
            ),
        }
        rows["batch"], rows["batch_number"] = (
            str(v)
            for v in conn.execute(
                text("select id, number from ap_export_batches where org_id = :org order by created_at limit 1"),
                {"org": demo_data.acme},
            ).one()
        )
        rows["voided_batch"] = one("select id from ap_export_batches where org_id = :org and status = 'voided' limit 1")
        rows["next_co"] = str(
            int(one("select count(*) from change_orders where engagement_id = :e", e=rows["kitchen"])) + 1
        )
        rows["cabinetry"] = one(
            "select id from milestones where engagement_id = :e and title = 'Cabinetry and countertops'",
            e=rows["kitchen"],
        )
        rows["demolition"] = one(
            "select id from milestones where engagement_id = :e and title = 'Demolition and rough-in'",
            e=rows["kitchen"],
        )
        rows["invoice"], rows["invoice_number"] = conn.execute(
            text(
                "select id::text, invoice_number from invoices where engagement_id = :e and status = 'approved'"
                " order by number limit 1"
            ),
            {"e": rows["kitchen"]},
        ).one()
        rows["paid_invoice"], rows["paid_invoice_number"] = conn.execute(
            text(
                "select id::text, invoice_number from invoices where engagement_id = :e and status = 'paid'"
                " order by number limit 1"
            ),
            {"e": rows["lobby"]},
        ).one()
    return rows


_demo_clients: dict = {}


@pytest.fixture
def demo_page(app, demo_data, demo_rows):
    """demo_page(who, path) -> the page's html as that demo person (None: signed out) gets it, 200."""

    def _get(who: str | None, path: str) -> str:
        if who not in _demo_clients:
            client = app.test_client()
            if who:
                response = client.post(
                    "/login",
                    data={"email": who, "password": demo_data.password, "csrf_token": csrf_token(client, "/login")},
                )
                assert response.status_code == 303, who
            _demo_clients[who] = client
        response = _demo_clients[who].get(path.format(**demo_rows))
        assert response.status_code == 200, (who, path, response.status_code)
        return response.get_data(as_text=True)

    return _get


@pytest.fixture
def worked(app_sessions, admin_engine, database, world):
    """The tests' own organization after an engagement's two milestones were approved and the worker
    wrote the emails, notifications and receipts those approvals call for."""
    approved_engagement(app_sessions, admin_engine, world)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    return world


# --- titles ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, path, expected", TITLES, ids=[f"{who or 'signed out'} {path}" for who, path, _ in TITLES]
)
def test_every_main_page_has_a_title_that_says_where_you_are(demo_page, demo_rows, who, path, expected):
    assert title_of(demo_page(who, path)) == f"{expected.format(**demo_rows)} · backoffice"


def test_error_pages_name_the_error_in_their_title(app, login, world):
    owner = signed_in(app, login, world.owner)
    response = owner.get(f"/engagements/{uuid.uuid4()}")
    assert response.status_code == 404
    assert re.fullmatch(r"Not [Ff]ound · Error 404 · backoffice", title_of(response.get_data(as_text=True)))


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/password/reset/not-a-real-token", "Password reset link expired"),
        ("/invite/not-a-real-token", "Invitation link expired"),
    ],
)
def test_an_expired_link_says_which_link_in_its_title(client, path, expected):
    response = client.get(path)
    assert response.status_code == 404
    assert title_of(response.get_data(as_text=True)) == f"{expected} · backoffice"


def test_an_invitation_is_titled_by_the_organization_it_leads_to(app, login, world):
    admin = signed_in(app, login, world.admin)
    token = invite_link_token(admin, name="Nora New", email=f"nora-{world.suffix}@example.com")
    html = app.test_client().get(f"/invite/{token}").get_data(as_text=True)
    assert title_of(html) == f"Set your password · Invitation to Org A {world.suffix} · backoffice"


def test_the_outbox_message_page_is_titled_by_its_subject(app, login, admin_engine, worked):
    with admin_engine.connect() as conn:
        message_id, subject = conn.execute(
            text("select id, subject from email_messages where org_id = :o order by created_at limit 1"),
            {"o": worked.org_a},
        ).one()
    html = signed_in(app, login, worked.admin).get(f"/admin/outbox/{message_id}").get_data(as_text=True)
    assert title_of(html) == f"{subject} · Outbox · backoffice"


# --- amounts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who, path", MONEY_PAGES, ids=[f"{who} {path}" for who, path in MONEY_PAGES])
def test_money_is_right_aligned_in_tabular_figures_with_its_currency(demo_page, who, path):
    html = demo_page(who, path)
    assert re.search(r'<td class="num[^"]*"[^>]*>\s*(<strong>)?\$', html), "the page shows money in a table"
    assert money_problems(html) == []


def test_the_right_aligned_class_uses_tabular_figures():
    rule = re.search(r"(?m)^\.num \{([^}]*)\}", CSS)
    assert rule and "text-align: right" in rule.group(1) and "tabular-nums" in rule.group(1)


def test_the_money_check_catches_a_left_aligned_amount_and_a_bare_number():
    table = (
        '<table><thead><tr><th scope="col">For</th><th scope="col">Net</th></tr></thead>'
        "<tbody><tr><td>Design</td><td>$1,000.00</td></tr>"
        '<tr><td>Build</td><td class="num">1,000.00</td></tr></tbody></table>'
    )
    assert money_problems(table) == [
        "header 'Net' is not right-aligned",
        "'$1,000.00' is not right-aligned",
        "'1,000.00' under 'Net' has no currency",
    ]


# --- dates -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who, path", DATE_PAGES, ids=[f"{who} {path}" for who, path in DATE_PAGES])
def test_moments_and_days_are_time_elements_with_the_exact_date_on_hover(demo_page, who, path):
    html = demo_page(who, path)
    assert times(html), "the page shows a date"
    assert time_problems(html) == []


@pytest.mark.parametrize(
    "who, path",
    [
        ("finance", "/documents/"),
        ("admin", "/admin/outbox/"),
        ("contractor_x_user", "/notifications/"),
        ("owner", "/notifications/"),
    ],
)
def test_receipts_emails_and_notifications_are_dated_with_time_elements(app, login, worked, who, path):
    html = signed_in(app, login, getattr(worked, who)).get(path).get_data(as_text=True)
    moments = [t for t in times(html) if t[0].endswith("Z")]
    assert moments, "the list shows when each row was written"
    assert time_problems(html) == []


def test_a_due_date_shows_the_day_and_hovers_with_weekday_and_distance(demo_page):
    html = demo_page(OWNER, "/engagements/{kitchen}")
    days = [t for t in times(html) if not t[0].endswith("Z")]
    assert days and all(" · " in hover for _, hover, _ in days)
    assert any(hover.endswith(" days ago") for _, hover, _ in days), "the overdue milestone says how long ago"


def test_the_date_check_catches_a_bare_moment_and_a_time_without_its_hover():
    page = (
        "<main><table><tr><td>21 Nov 2026, 14:03 UTC</td>"
        '<td><time datetime="2026-11-21">21 Nov 2026</time></td></tr></table></main>'
    )
    assert time_problems(page) == [
        "day 2026-11-21: hover ''",
        "a plain moment outside <time>: '21 Nov 2026, 14:03 UTC'",
    ]


def test_dates_never_wrap_inside_a_cell():
    assert re.search(r"(?m)^time \{[^}]*white-space: nowrap", CSS)


# --- status badges -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who, path", MAIN_PAGES, ids=[f"{who} {path}" for who, path in MAIN_PAGES])
def test_every_status_badge_has_a_colour_that_means_the_same_everywhere(demo_page, who, path):
    html = demo_page(who, path)
    styled = set(re.findall(r"\.status-([a-z_]+)", CSS))
    used = set(re.findall(r'class="badge status-([a-z_]+)"', html))
    assert used <= styled, f"status badges without a colour: {used - styled}"
    assert not re.search(r'class="badge (decision|email)-', html), "an ad-hoc badge"


def test_each_status_has_exactly_one_colour():
    rules = re.findall(r"(?m)^((?:\.status-[a-z_]+,?\s*)+)\{", CSS)
    seen = [name for rule in rules for name in re.findall(r"\.status-([a-z_]+)", rule)]
    assert len(seen) == len(set(seen)), f"a status coloured twice: {sorted(n for n in seen if seen.count(n) > 1)}"
    assert {
        "draft",
        "active",
        "submitted",
        "approved",
        "approve",
        "partial",
        "dispute",
        "exported",
        "paid",
        "void",
        "on_hold",
        "sent",
        "kept",
        "failed",
        "completed",
        "cancelled",
        "declined",
        "paused",
    } <= set(seen)


def test_the_outbox_shows_email_statuses_as_status_badges(app, login, worked):
    html = signed_in(app, login, worked.admin).get("/admin/outbox/").get_data(as_text=True)
    assert 'class="badge status-kept">Kept' in html


# --- confirmations -----------------------------------------------------------------------------------------


def confirm_of(html: str, label: str) -> str:
    """The data-confirm question of the button whose label starts with ``label`` (on the button or its form)."""
    for form in re.findall(r"<form\b.*?</form>", html, re.S):
        button = re.search(rf"<button\b([^>]*)>\s*{re.escape(label)}", form)
        if button:
            asked = re.search(r'data-confirm="([^"]+)"', button.group(1)) or re.search(
                r'<form\b[^>]*data-confirm="([^"]+)"', form
            )
            assert asked, f"{label!r} asks nothing"
            return html_lib.unescape(asked.group(1))
    raise AssertionError(f"no button {label!r}")


# (who, path, the button, the question it asks as a pattern): the question names what is at stake.
CONFIRMS = [
    (
        ADMIN,
        "/admin/members/{member}",
        "Remove from organization",
        r"Remove [A-Z][a-z]+ [A-Z][a-z]+ from this organization\?",
    ),
    (ADMIN, "/admin/members/{member}", "Save role", r"Change the role of [A-Z][a-z]+ [A-Z][a-z]+\?"),
    (
        OWNER,
        "/engagements/{kitchen}",
        "Cancel the engagement",
        r"Cancel Kitchen renovation, 14 Elm St\? .*cannot be undone",
    ),
    (OWNER, "/engagements/{showroom}", "Send the work request", r"Send the work request to Bluebird Electrical LLC\?"),
    (
        BEN,
        "/engagements/{rewiring}",
        "Decline the work request",
        r"Decline the work request for Office rewiring, 2nd floor\?",
    ),
    (
        OWNER,
        "/engagements/{kitchen}/change-orders/new",
        "Issue CO-",
        r"Issue CO-\d+ for Kitchen renovation, 14 Elm St\?",
    ),
    (
        OWNER,
        "/engagements/{kitchen}",
        "Authorize the release",
        r"Authorize paying \$[\d,]+\.\d\d of retainage to Northwind Design Ltd\?",
    ),
    (FINANCE, "/payments/", "Export selected", r"Export the selected payments to a new AP batch\?"),
    (FINANCE, "/payments/", "Export all due", r"Export every authorized payment due by that date"),
    (FINANCE, "/invoices/{invoice}", "Record payment of", r"Record \$[\d,]+\.\d\d to Northwind Design Ltd as paid\?"),
    (
        OWNER,
        "/milestones/{cabinetry}",
        "Approve and authorize $12,800.00",
        r"Authorize \$12,800\.00 gross, \$11,520\.00 net to Northwind Design Ltd\?",
    ),
    (
        OWNER,
        "/milestones/{cabinetry}",
        "Dispute and send back",
        r"Dispute “Cabinetry and countertops” and send it back to Northwind Design Ltd unpaid\?",
    ),
]


@pytest.mark.parametrize("who, path, button, question", CONFIRMS, ids=[button for _, _, button, _ in CONFIRMS])
def test_irreversible_actions_ask_a_specific_question_first(demo_page, who, path, button, question):
    assert re.match(question, confirm_of(demo_page(who, path), button))


@pytest.mark.parametrize("who, path", MAIN_PAGES, ids=[f"{who} {path}" for who, path in MAIN_PAGES])
def test_questions_go_through_data_confirm_which_works_with_and_without_htmx(demo_page, who, path):
    assert "hx-confirm" not in demo_page(who, path)


# --- empty states ------------------------------------------------------------------------------------------


def empty_state(html: str) -> str:
    found = re.search(r'<article class="empty">(.*?)</article>', html, re.S)
    assert found, "an empty state"
    return found.group(1)


@pytest.mark.parametrize(
    "who, path, says, links_to",
    [
        ("owner", "/engagements", "No engagements yet. Create one with New engagement", "/engagements/new"),
        ("finance", "/engagements", "A project owner or an admin creates them", "/payments/"),
        ("contractor_x_user", "/engagements", "When the organization sends you a work request", None),
        (
            "owner",
            "/engagements/due",
            "once a contractor accepts a work request; send one from a draft",
            "/engagements",
        ),
        ("contractor_x_user", "/engagements/due", "When you accept a work request", "/engagements"),
        ("finance", "/engagements/due", "approved ones wait in the payment queue", "/payments/"),
        ("owner", "/reviews/", "When a contractor marks a milestone complete, it appears here", "/engagements/due"),
        ("finance", "/payments/", "When a project owner approves a milestone, its payment appears here", "/batches/"),
        ("finance", "/batches/", "select authorized payments", "/payments/"),
        ("finance", "/retainage/", "as approvals reach the payment queue", "/payments/"),
        ("owner", "/retainage/", "approve submitted work in the review queue", "/reviews/"),
        (
            "finance",
            "/documents/",
            "No documents yet. A self-billed invoice is issued for every payment authorized",
            None,
        ),
        ("owner", "/notifications/", "No notifications yet.", None),
        ("admin", "/admin/outbox/", "No emails yet.", None),
        ("contractor_x_user", "/invoices/", "When a project owner approves a milestone you submitted", None),
    ],
)
def test_an_empty_list_says_what_to_do_next(app, login, world, who, path, says, links_to):
    response = signed_in(app, login, getattr(world, who)).get(path)
    assert response.status_code == 200
    empty = empty_state(response.get_data(as_text=True))
    assert says in visible_text(empty)
    if links_to:
        assert f'href="{links_to}"' in empty


def test_only_people_who_may_create_an_engagement_are_offered_to(app, login, world):
    for who in (world.finance, world.contractor_x_user):
        html = signed_in(app, login, who).get("/engagements").get_data(as_text=True)
        assert 'href="/engagements/new"' not in html, who.name
