"""From project to contract in a real browser (issue 19): the owner opens a project and invites two contractors;
both propose; the owner compares the proposals with each contractor's record and awards one, after a confirmation;
the winner finds an active engagement and submits its first milestone; the other sees its proposal declined.

Each step is checked as the person sees it, the end state as the owner role reads it."""

from __future__ import annotations

import re
from datetime import date, timedelta

from kit.browser import sign_in
from kit.engagements import owner_query
from kit.projects import category
from playwright.sync_api import Page, expect

DEADLINE = date.today() + timedelta(days=10)


def propose(page: Page, price: str, rows: list[tuple[str, str, str, str]], note: str) -> None:
    """Fill the proposal form: the price, one row per milestone (adding rows as needed), a note; then send it."""
    page.get_by_label(re.compile(r"^Your price")).fill(price)
    for i, (title, deliverable, amount, due) in enumerate(rows, start=1):
        if page.get_by_label(f"Title of milestone {i}").count() == 0:
            page.get_by_role("button", name="+ Add a milestone").click()
        expect(page.get_by_label(f"Title of milestone {i}")).to_be_visible()
        page.get_by_label(f"Title of milestone {i}").fill(title)
        page.get_by_label(f"Deliverable of milestone {i}").fill(deliverable)
        page.get_by_label(re.compile(rf"^Amount of milestone {i} in")).fill(amount)
        page.get_by_label(f"Due date of milestone {i}").fill(due)
    page.get_by_label("Note to the project owner (optional)").fill(note)
    page.get_by_role("button", name="Send your proposal").click()


def test_the_owner_invites_two_contractors_compares_their_proposals_and_awards_one(
    new_context, screenshots, accessible, app_sessions, admin_engine, world
):
    category(app_sessions, world, "Fit-out")

    # The owner opens a project and invites contractors X and Y.
    owner = new_context().new_page()
    asked: list[str] = []
    owner.on("dialog", lambda d: (asked.append(d.message), d.accept()))  # the award asks first (data-confirm)
    sign_in(owner, world.owner)
    owner.get_by_role("link", name="Projects", exact=True).click()
    expect(owner.get_by_role("heading", level=1)).to_contain_text("Projects")
    owner.get_by_role("button", name="New project").first.click()
    owner.locator("#title").fill("Reading room fit-out")
    owner.locator("#description").fill("Shelving, lighting and a quiet corner; work after hours.")
    owner.get_by_label("Category").select_option(label="Fit-out")
    owner.get_by_label("Deadline for proposals").fill(DEADLINE.isoformat())
    owner.get_by_label("Budget (optional)").fill("20,000.00")
    owner.get_by_label(re.compile(f"Contractor X {world.suffix}")).check()
    owner.get_by_label(re.compile(f"Contractor Y {world.suffix}")).check()
    screenshots.take(owner, "owner opens a project")
    accessible(owner, "owner: new project")
    owner.get_by_role("button", name="Open the project").click()
    expect(owner.get_by_role("heading", level=1)).to_contain_text("Reading room fit-out")
    project_url = owner.url
    (project,) = owner_query(
        admin_engine,
        "select id, status from projects where title = 'Reading room fit-out' and org_id = :o",
        o=world.org_a,
    )
    assert project["status"] == "open"

    # Both contractors find it under Projects and propose.
    x = new_context().new_page()
    sign_in(x, world.contractor_x_user)
    x.get_by_role("link", name="Projects", exact=True).click()
    x.get_by_role("link", name="Reading room fit-out").first.click()
    propose(
        x,
        "18,500.00",
        [
            ("Shelving", "Shelving installed", "12,000.00", (DEADLINE + timedelta(days=20)).isoformat()),
            (
                "Lighting and handover",
                "Lights tested, snag list closed",
                "6,500.00",
                (DEADLINE + timedelta(days=40)).isoformat(),
            ),
        ],
        "Same crew as the archive room.",
    )
    # The form's running total says $18,500.00 too: wait for the page the proposal lands on, not the form.
    expect(x.get_by_text("Your proposal was sent.")).to_be_visible()
    expect(x.locator("article", has_text="Your proposal")).to_contain_text("$18,500.00")
    screenshots.take(x, "contractor X proposed")
    accessible(x, "contractor: own proposal")

    y = new_context().new_page()
    sign_in(y, world.contractor_y_user)
    y.goto("/proposals")
    y.get_by_role("link", name="Reading room fit-out").first.click()
    expect(y.get_by_text("$18,500.00")).to_have_count(0)  # never a competitor's price
    propose(
        y,
        "16,900.00",
        [("Everything", "Room fitted out", "16,900.00", (DEADLINE + timedelta(days=30)).isoformat())],
        "We can start next week.",
    )
    expect(y.get_by_text("Your proposal was sent.")).to_be_visible()
    expect(y.locator("article", has_text="Your proposal")).to_contain_text("$16,900.00")
    expect(y.get_by_text("$18,500.00")).to_have_count(0)

    # The owner compares them side by side, with each contractor's record, and accepts X's after a confirmation.
    owner.goto(project_url)
    cards = owner.locator("article", has_text="Record here")
    expect(cards).to_have_count(2)
    card_x = owner.locator("article", has_text=f"Contractor X {world.suffix}").filter(has_text="Record here")
    expect(card_x).to_contain_text("$18,500.00")
    expect(card_x).to_contain_text("Shelving")
    expect(
        owner.locator("article", has_text=f"Contractor Y {world.suffix}").filter(has_text="Record here")
    ).to_contain_text("$16,900.00")
    screenshots.take(owner, "owner compares the proposals")
    accessible(owner, "owner: proposals side by side")
    card_x.get_by_role("button", name="Accept this proposal…").click()
    expect(owner.get_by_role("heading", level=1)).to_contain_text(f"Contractor X {world.suffix}")
    expect(owner.get_by_role("heading", level=1)).to_contain_text("$18,500.00")
    expect(owner.get_by_text(f"Contractor Y {world.suffix} ($16,900.00)")).to_be_visible()  # who will be declined
    screenshots.take(owner, "owner confirms the award")
    accessible(owner, "owner: confirm the award")
    owner.get_by_role("button", name="Accept and create the engagement").click()
    expect(owner.get_by_role("heading", level=1)).to_contain_text("Active")
    assert asked[-1].startswith(f"Accept Contractor X {world.suffix}'s proposal for $18,500.00 and create"), asked
    expect(owner.get_by_text("Awarded from project")).to_be_visible()
    screenshots.take(owner, "owner lands on the active engagement")

    (engagement,) = owner_query(
        admin_engine,
        "select e.id, e.status, e.contractor_id, q.status as proposal_status from engagements e"
        " join proposals q on q.org_id = e.org_id and q.id = e.proposal_id where q.project_id = :p",
        p=project["id"],
    )
    assert (engagement["status"], engagement["contractor_id"], engagement["proposal_status"]) == (
        "active",
        world.contractor_x,
        "accepted",
    )
    milestones = owner_query(
        admin_engine,
        "select title, amount_minor from milestones where engagement_id = :e order by seq",
        e=engagement["id"],
    )
    assert [(m["title"], m["amount_minor"]) for m in milestones] == [
        ("Shelving", 1_200_000),
        ("Lighting and handover", 650_000),
    ]

    # The winner sees an active engagement and submits its first milestone.
    x.goto("/proposals")
    x.get_by_role("link", name=re.compile("see the engagement")).first.click()
    expect(x.get_by_role("heading", level=1)).to_contain_text("Active")
    x.get_by_role("link", name="Shelving").first.click()
    x.get_by_label("What did you deliver?").fill("Shelving installed along the north wall.")
    x.get_by_label("Links (optional").fill("https://drive.example.com/reading-room/shelving")
    x.get_by_role("button", name="Submit for review").click()
    expect(x.get_by_text("Revision 1 submitted.")).to_be_visible()
    screenshots.take(x, "the winner submitted its first milestone")

    # The other sees its proposal declined.
    y.goto("/proposals")
    expect(y.get_by_role("main")).to_contain_text("Declined")
    expect(y.get_by_text("$18,500.00")).to_have_count(0)
    screenshots.take(y, "the other contractor sees it declined")
    accessible(y, "contractor: declined proposal")
    (declined,) = owner_query(
        admin_engine,
        "select status from proposals where project_id = :p and contractor_id = :c",
        p=project["id"],
        c=world.contractor_y,
    )
    assert declined["status"] == "declined"
