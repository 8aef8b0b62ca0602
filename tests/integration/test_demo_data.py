"""The demo is built through the real services (work submitted with evidence, decided by the owner),
so a rule the services or the database add later must keep it buildable. Seeded once into the shared
test database; its organizations are its own, like every test's."""

from __future__ import annotations

import pytest
from kit.signin import actor_of
from sqlalchemy import select, text

from backoffice.db import make_session_factory
from backoffice.models import Milestone, User
from backoffice.queries.reviews import milestone_detail, review_queue
from backoffice.services.audit import verify_chain


@pytest.fixture(scope="module")
def seeded(admin_engine, demo_data):
    with make_session_factory(admin_engine)() as session:
        owner = session.execute(select(User.id).where(User.email == "owner@acme.example")).scalar_one()
    return demo_data.acme, owner


def test_the_demo_owner_has_two_submissions_waiting_one_with_files_and_a_link(seeded, act_as):
    acme, owner = seeded
    session = act_as(owner, acme)
    queue = review_queue(session, actor_of(session, owner, acme)).rows
    assert [(r.title, r.file_count, r.link_count) for r in queue] == [
        ("Cabinetry and countertops", 3, 1),
        ("Joinery and kitchenette", 2, 0),  # a task of the fit-out billed on completion (services/demo_completion)
    ]


def test_the_demo_shows_a_dispute_then_an_approval_and_its_audit_chain_verifies(seeded, act_as, admin_engine):
    acme, owner = seeded
    session = act_as(owner, acme)
    kitchen = next(
        r for r in review_queue(session, actor_of(session, owner, acme)).rows if r.title == "Cabinetry and countertops"
    ).engagement_id
    ids = (
        session.execute(select(Milestone.id).where(Milestone.engagement_id == kitchen).order_by(Milestone.seq))
        .scalars()
        .all()
    )
    detail = milestone_detail(session, ids[1])
    assert detail.title == "Demolition and rough-in" and detail.status.value == "approved"
    assert [(r.revision, r.review.decision.value) for r in detail.revisions] == [(2, "approve"), (1, "dispute")]
    assert all(len(f.sha256) == 64 for r in detail.revisions for f in r.files)
    with make_session_factory(admin_engine)() as owner_role:
        _, breaks = verify_chain(owner_role)
    assert breaks == []


def test_the_demo_has_a_milestone_sent_back_and_a_voided_batch_whose_payments_wait_again(seeded, act_as, admin_engine):
    acme, owner = seeded
    session = act_as(owner, acme)
    lighting = session.execute(select(Milestone.id).where(Milestone.title == "Under-cabinet lighting")).scalar_one()
    detail = milestone_detail(session, lighting)
    assert detail.status.value == "planned" and detail.returned.decision.value == "dispute"
    assert [(r.revision, r.review.decision.value) for r in detail.revisions] == [(1, "dispute")]
    assert "dimmer" in detail.revisions[0].review.reason
    with admin_engine.connect() as conn:
        batches = conn.execute(
            text("select number, status, row_count from ap_export_batches where org_id = :o order by number"),
            {"o": acme},
        ).all()
        waiting = conn.execute(
            text(
                "select count(*) from invoices i join engagements e on e.id = i.engagement_id"
                " where i.org_id = :o and e.title like 'Kitchen%' and i.status = 'approved' and i.batch_id is null"
            ),
            {"o": acme},
        ).scalar_one()
    # 3 and 4: the completion billing's (services/demo_completion): the signage's paid, the fit-out's task invoice
    assert [(b.number, b.status, b.row_count) for b in batches] == [
        (1, "live", 2),
        (2, "voided", 2),
        (3, "live", 2),
        (4, "live", 1),
    ]
    assert waiting == 2


def test_the_demo_trail_names_the_people_who_acted(seeded, admin_engine):
    """The demo is seeded by the owner role through the services on its people's behalf: the trail says who
    (the database records the transaction's identity, which the services name when nobody is in it)."""
    acme, _ = seeded
    with admin_engine.connect() as conn:
        who = dict(
            conn.execute(
                text(
                    "select action, string_agg(distinct actor_label, ',' order by actor_label) from audit_events"
                    " where org_id = :org and action in ('milestone.approved', 'milestone.submitted',"
                    " 'ap_export.created', 'ap_export.voided') group by action"
                ),
                {"org": acme},
            ).all()
        )
    assert who == {
        "milestone.approved": "owner@acme.example",
        # ben: Bluebird's blocked invoice; hal: the awarded survey's first milestone (services/demo_projects)
        "milestone.submitted": "ben@bluebird.example,hal@harbor.example,nina@northwind.example",
        "ap_export.created": "finance@acme.example",
        "ap_export.voided": "admin@acme.example",
    }


def test_the_demo_requires_a_tax_form_nina_has_her_w9_and_bluebird_is_blocked(seeded, act_as, app):
    """Issue 18: Northwind's W-9 is complete (its TIN readable with the server's key); Bluebird has an approved
    invoice and no W-9, so it waits, and says why; the 1099 year end has Northwind's payments."""
    from backoffice.queries.tax import tax_form_blocks, year_end
    from backoffice.services.tin_cipher import decrypt_tin

    acme, owner = seeded
    session = act_as(owner, acme)
    names = dict(session.execute(text("select legal_name, id from contractors where org_id = :o"), {"o": acme}).all())
    approved = session.execute(
        text("select count(*) from invoices where contractor_id = :c and status = 'approved'"),
        {"c": names["Bluebird Electrical LLC"]},
    ).scalar_one()
    assert approved == 1
    assert tax_form_blocks(session, names.values()) == {
        names["Bluebird Electrical LLC"]: "Tax form missing: no W-9 on file",
        names["Harbor Surveying Co."]: "Tax form missing: no W-9 on file",
    }
    finance = session.execute(text("select id from users where email = 'finance@acme.example'")).scalar_one()
    session = act_as(finance, acme)
    (tin,) = session.execute(text("select ciphertext from tax_tins")).scalars()
    assert decrypt_tin(app.config["TAX_ID_KEY"], acme, tin) == "987654321"
    this_year = session.execute(text("select extract(year from current_date)::int")).scalar_one()
    rows = year_end(session, this_year).rows
    assert [(r.legal_name, r.reportable, r.problem) for r in rows] == [("Northwind Design Ltd", True, None)]


# --- projects and proposals (issue 19: services/demo_projects) ------------------------------------------------------


def test_the_demo_has_an_open_project_with_three_proposals_from_three_contractors(seeded, admin_engine, act_as):
    acme, _ = seeded
    with admin_engine.connect() as conn:
        categories = (
            conn.execute(text("select name from project_categories where org_id = :o order by name"), {"o": acme})
            .scalars()
            .all()
        )
        (project,) = conn.execute(
            text("select id, title, deadline from projects where org_id = :o and status = 'open'"), {"o": acme}
        ).all()
        offers = conn.execute(
            text(
                "select c.legal_name, q.status, q.price_minor,"
                " (select sum(m.amount_minor) from proposal_milestones m where m.proposal_id = q.id) as shared"
                " from proposals q join contractors c on c.id = q.contractor_id where q.project_id = :p"
                " order by c.legal_name"
            ),
            {"p": project.id},
        ).all()
        today = conn.execute(text("select project_today()")).scalar_one()
    assert categories == ["Design", "Electrical", "IT", "Renovation", "Surveying"]
    assert project.title == "Meeting rooms refit, 3rd floor" and project.deadline > today
    assert [(o.legal_name, o.status, o.price_minor, o.shared) for o in offers] == [
        ("Bluebird Electrical LLC", "submitted", 1895000, 1895000),
        ("Harbor Surveying Co.", "submitted", 1230000, 1230000),
        ("Northwind Design Ltd", "submitted", 2160000, 2160000),
    ]
    # Nina, one of the three, sees her own proposal only: never a competitor's price.
    nina = _user(admin_engine, "nina@northwind.example")
    session = act_as(nina, acme)
    assert session.execute(
        text("select price_minor from proposals where project_id = :p"), {"p": project.id}
    ).scalars().all() == [2160000]


def test_the_demo_has_an_awarded_project_whose_engagement_is_the_accepted_proposals(seeded, admin_engine):
    acme, owner = seeded
    with admin_engine.connect() as conn:
        (project,) = conn.execute(
            text("select id, title, awarded_by from projects where org_id = :o and status = 'awarded'"), {"o": acme}
        ).all()
        offers = dict(
            conn.execute(
                text(
                    "select c.legal_name, q.status from proposals q join contractors c on c.id = q.contractor_id"
                    " where q.project_id = :p"
                ),
                {"p": project.id},
            ).all()
        )
        (accepted,) = conn.execute(
            text("select id, price_minor from proposals where project_id = :p and status = 'accepted'"),
            {"p": project.id},
        ).all()
        (engagement,) = conn.execute(
            text(
                "select e.id, e.title, e.status, c.legal_name from engagements e"
                " join contractors c on c.id = e.contractor_id where e.proposal_id = :q"
            ),
            {"q": accepted.id},
        ).all()
        milestones = conn.execute(
            text("select title, amount_minor, status from milestones where engagement_id = :e order by seq"),
            {"e": engagement.id},
        ).all()
    assert project.title == "Loading dock survey, warehouse B" and project.awarded_by == owner
    assert offers == {"Harbor Surveying Co.": "accepted", "Northwind Design Ltd": "declined"}
    assert (engagement.title, engagement.status, engagement.legal_name) == (
        "Loading dock survey, warehouse B",
        "active",
        "Harbor Surveying Co.",
    )
    # The survey came without the ramp: partly approved under the split policy (issue 22), the rest a new milestone.
    assert [tuple(m) for m in milestones] == [
        ("Topographic survey", 150000, "approved"),
        ("Levels and drainage report", 325000, "planned"),
        ("Topographic survey (remainder)", 65000, "planned"),
    ]
    assert sum(m.amount_minor for m in milestones) == accepted.price_minor == 540000


def _user(admin_engine, email: str):
    with admin_engine.connect() as conn:
        return conn.execute(text("select id from users where email = :e"), {"e": email}).scalar_one()
