"""Row-level security for submissions, evidence files, their chunks and reviews, with raw SQL as the app
role (DESIGN.md section 5).

The rows are built the way the app builds them (submit_work and decide); every statement judged here is
plain ``text()`` SQL run by the app role, so only the database stands between a tenant, or a contractor,
and another's evidence. The owner role (``admin_engine``, BYPASSRLS) is the ground truth: after each
refusal, org A's evidence and review rows are exactly as they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from kit.engagements import owner_query, sign_in
from kit.milestones import authorize_payment
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services import engagements, schedule
from backoffice.services.demo_evidence import photo_png
from backoffice.services.engagements import EngagementInput
from backoffice.services.evidence import UploadedFile
from backoffice.services.reviews import DecisionInput, decide
from backoffice.services.schedule import RowInput, ScheduleInput
from backoffice.services.submissions import SubmissionInput, submit_work

TABLES = ["submissions", "evidence_files", "evidence_chunks", "reviews"]
INSUFFICIENT_PRIVILEGE = "42501"

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
NOTES = b"Site notes: walls plastered, sockets fitted.\n"


# --- seeding (through the services, as the people who would do it) ---------------------------------------


@dataclass(frozen=True)
class Seeded:
    """One contractor's active engagement: milestone 1 disputed once and resubmitted (revision 2 awaits
    review), milestone 2 still planned."""

    org_id: uuid.UUID
    contractor_id: uuid.UUID
    milestones: tuple[uuid.UUID, uuid.UUID]
    awaiting: uuid.UUID  # revision 2 of milestone 1, not yet decided
    awaiting_hashes: list[str]
    file_id: uuid.UUID  # a file of revision 2
    amount_minor: int


def seed(act_as, admin_engine, *, org_id, staff, contractor_id, contractor_user, title) -> Seeded:
    session, actor = sign_in(act_as, staff, org_id)
    e = engagements.create_engagement(
        session, actor, EngagementInput(contractor_id=str(contractor_id), title=title, owner_user_id=str(staff.id))
    )
    schedule.save_schedule(
        session,
        actor,
        e.id,
        ScheduleInput(
            rows=[
                RowInput(title=f"{title} part 1", amount="1,000.00", due_date="2030-01-15"),
                RowInput(title=f"{title} part 2", amount="2,000.00", due_date="2030-02-15"),
            ]
        ),
    )
    engagements.perform(session, actor, e.id, "send")
    session, actor = sign_in(act_as, contractor_user, org_id)
    engagements.perform(session, actor, e.id, "accept")
    m1, m2 = [
        r["id"]
        for r in owner_query(admin_engine, "select id from milestones where engagement_id = :e order by seq", e=e.id)
    ]

    session, actor = sign_in(act_as, contractor_user, org_id)
    first = submit_work(
        session,
        actor,
        m1,
        SubmissionInput(
            note="First go.",
            files=[UploadedFile.from_bytes("report.pdf", PDF), UploadedFile.from_bytes("notes.txt", NOTES)],
        ),
    )
    session, actor = sign_in(act_as, staff, org_id)
    decide(session, actor, m1, DecisionInput(submission_id=str(first.id), decision="dispute", reason="Photos missing."))
    session, actor = sign_in(act_as, contractor_user, org_id)
    second = submit_work(
        session,
        actor,
        m1,
        SubmissionInput(
            note="With photos.",
            links="https://example.com/album",
            files=[UploadedFile.from_bytes("site.png", photo_png(16, 12))],
        ),
    )
    files = owner_query(
        admin_engine, "select id, sha256 from evidence_files where submission_id = :s order by position", s=second.id
    )
    return Seeded(org_id, contractor_id, (m1, m2), second.id, [f["sha256"] for f in files], files[0]["id"], 100_000)


@pytest.fixture
def seeded(world, act_as, admin_engine) -> dict[str, Seeded]:
    """Evidence and reviews of contractor X and contractor Y in org A, and of contractor Z in org B."""
    return {
        "x": seed(
            act_as,
            admin_engine,
            org_id=world.org_a,
            staff=world.owner,
            contractor_id=world.contractor_x,
            contractor_user=world.contractor_x_user,
            title="X work",
        ),
        "y": seed(
            act_as,
            admin_engine,
            org_id=world.org_a,
            staff=world.owner,
            contractor_id=world.contractor_y,
            contractor_user=world.contractor_y_user,
            title="Y work",
        ),
        "z": seed(
            act_as,
            admin_engine,
            org_id=world.org_b,
            staff=world.admin_b,
            contractor_id=world.contractor_z,
            contractor_user=world.contractor_z_user,
            title="Z work",
        ),
    }


# --- helpers --------------------------------------------------------------------------------------------

KEY = {"evidence_chunks": "file_id"}  # the chunks have no id of their own


def truth(admin_engine, table: str, where: str, **params) -> list[dict]:
    """Rows of ``table`` as the owner role sees them (RLS bypassed)."""
    order = "file_id, chunk_no" if table == "evidence_chunks" else "id"
    return owner_query(admin_engine, f"select * from {table} where {where} order by {order}", **params)


def ids_of(admin_engine, table: str, where: str, **params) -> set:
    return {r[KEY.get(table, "id")] for r in truth(admin_engine, table, where, **params)}


def snapshot(admin_engine) -> dict[str, list[dict]]:
    """Every evidence and review row of every org in the test (both orgs are compared)."""
    return {table: truth(admin_engine, table, "true") for table in TABLES}


def visible(session, table: str) -> set:
    rows = set(session.execute(text(f"select {KEY.get(table, 'id')} from {table}")).scalars())
    session.rollback()
    return rows


def refused(session, sql: str, params: dict) -> str:
    """Run ``sql`` expecting the database to refuse it for want of privilege (a grant, a policy or a guard)."""
    with pytest.raises(DBAPIError) as exc:
        session.execute(text(sql), params)
        session.flush()
    session.rollback()
    message = str(exc.value.orig)
    assert exc.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, message
    return message


INSERTS = {
    "submissions": (
        "insert into submissions (org_id, contractor_id, milestone_id, revision, note, links, submitted_by)"
        " values (:org, :c, :planned, 1, 'Planted work', '[\"https://example.com/planted\"]', :me)"
    ),
    "evidence_files": (
        "insert into evidence_files (org_id, contractor_id, submission_id, position, file_name, content_type,"
        " size_bytes, sha256) values (:org, :c, :submission, 9, 'planted.txt', 'text/plain', 7, repeat('a', 64))"
    ),
    "evidence_chunks": (
        "insert into evidence_chunks (org_id, contractor_id, file_id, chunk_no, data)"
        " values (:org, :c, :file, 7, 'planted')"
    ),
    "reviews": (
        "insert into reviews (org_id, contractor_id, milestone_id, submission_id, decision, milestone_amount_minor,"
        " evidence_sha256, reviewed_by) values (:org, :c, :submitted, :submission, 'approve', :amount, :hashes, :me)"
    ),
}


def insert_params(seed: Seeded, me) -> dict:
    return {
        "org": seed.org_id,
        "c": seed.contractor_id,
        "planned": seed.milestones[1],
        "submitted": seed.milestones[0],
        "submission": seed.awaiting,
        "file": seed.file_id,
        "amount": seed.amount_minor,
        "hashes": seed.awaiting_hashes,
        "me": me,
    }


UPDATES = {
    "submissions": "update submissions set note = 'Rewritten', links = '[]'",
    "evidence_files": "update evidence_files set sha256 = repeat('0', 64), file_name = 'swapped.pdf'",
    "evidence_chunks": "update evidence_chunks set data = 'swapped'",
    "reviews": "update reviews set decision = 'approve', reason = null",
}
EVERYONE = ["owner", "admin", "finance", "contractor_x_user", "contractor_y_user", "admin_b", "contractor_z_user"]


def org_of(world, who: str):
    return world.org_b if who in ("admin_b", "contractor_z_user") else world.org_a


# --- reading --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_staff_of_org_a_see_all_of_org_as_evidence_and_reviews_and_none_of_org_b(
    world, seeded, act_as, admin_engine, table
):
    org_a_rows = ids_of(admin_engine, table, "org_id = :o", o=world.org_a)
    assert org_a_rows and ids_of(admin_engine, table, "org_id = :o", o=world.org_b)
    for who in ("owner", "admin", "finance"):
        assert visible(act_as(getattr(world, who).id, world.org_a), table) == org_a_rows, who


@pytest.mark.parametrize("table", TABLES)
def test_another_orgs_users_see_none_of_org_as_evidence_or_reviews(world, seeded, act_as, admin_engine, table):
    org_a_rows = ids_of(admin_engine, table, "org_id = :o", o=world.org_a)
    org_b_rows = ids_of(admin_engine, table, "org_id = :o", o=world.org_b)
    assert visible(act_as(world.admin_b.id, world.org_b), table) == org_b_rows
    assert visible(act_as(world.contractor_z_user.id, world.org_b), table) == org_b_rows
    # Naming org A without a membership there shows nothing at all.
    assert visible(act_as(world.admin_b.id, world.org_a), table) == set()
    assert visible(act_as(world.contractor_z_user.id, world.org_a), table) == set()
    assert org_a_rows.isdisjoint(org_b_rows)


@pytest.mark.parametrize("table", TABLES)
def test_contractor_sees_only_its_own_submissions_files_chunks_and_reviews(world, seeded, act_as, admin_engine, table):
    own_x = ids_of(admin_engine, table, "contractor_id = :c", c=world.contractor_x)
    own_y = ids_of(admin_engine, table, "contractor_id = :c", c=world.contractor_y)
    assert own_x and own_y
    assert visible(act_as(world.contractor_x_user.id, world.org_a), table) == own_x
    assert visible(act_as(world.contractor_y_user.id, world.org_a), table) == own_y


def test_contractor_cannot_read_another_contractors_file_bytes_by_id(world, seeded, act_as):
    s = act_as(world.contractor_y_user.id, world.org_a)
    chunks = s.execute(text("select data from evidence_chunks where file_id = :f"), {"f": seeded["x"].file_id}).all()
    assert chunks == []
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert (
        s.execute(
            text("select count(*) from evidence_chunks where file_id = :f"), {"f": seeded["x"].file_id}
        ).scalar_one()
        == 1
    )


# --- writing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin_b", "contractor_z_user"])
@pytest.mark.parametrize("table", TABLES)
def test_another_orgs_users_cannot_insert_evidence_or_reviews_into_org_a(
    world, seeded, act_as, admin_engine, table, who
):
    before = snapshot(admin_engine)
    for org in (world.org_b, world.org_a):  # acting in their own org, or naming org A
        refused(act_as(getattr(world, who).id, org), INSERTS[table], insert_params(seeded["x"], getattr(world, who).id))
    assert snapshot(admin_engine) == before


@pytest.mark.parametrize("table", TABLES)
def test_another_contractor_cannot_write_contractor_xs_evidence_or_reviews(world, seeded, act_as, admin_engine, table):
    before = snapshot(admin_engine)
    s = act_as(world.contractor_y_user.id, world.org_a)
    refused(s, INSERTS[table], insert_params(seeded["x"], world.contractor_y_user.id))
    assert snapshot(admin_engine) == before


@pytest.mark.parametrize("table", TABLES)
def test_finance_reads_but_cannot_insert(world, seeded, act_as, admin_engine, table):
    before = snapshot(admin_engine)
    s = act_as(world.finance.id, world.org_a)
    assert visible(s, table)
    refused(s, INSERTS[table], insert_params(seeded["x"], world.finance.id))
    assert snapshot(admin_engine) == before


def test_a_contractor_cannot_insert_a_review_even_of_its_own_work(world, seeded, act_as, admin_engine):
    before = snapshot(admin_engine)
    s = act_as(world.contractor_x_user.id, world.org_a)
    refused(s, INSERTS["reviews"], insert_params(seeded["x"], world.contractor_x_user.id))
    assert snapshot(admin_engine) == before


@pytest.mark.parametrize("who", ["owner", "admin"])
@pytest.mark.parametrize("table", ["submissions", "evidence_files", "evidence_chunks"])
def test_owners_and_admins_cannot_insert_submissions_or_evidence(world, seeded, act_as, admin_engine, table, who):
    before = snapshot(admin_engine)
    s = act_as(getattr(world, who).id, world.org_a)
    refused(s, INSERTS[table], insert_params(seeded["x"], getattr(world, who).id))
    assert snapshot(admin_engine) == before


def test_the_review_insert_is_one_the_engagements_owner_may_make(world, seeded, act_as, admin_engine):
    """The control for the refusals above: the same statement by the right person is accepted."""
    s = act_as(world.owner.id, world.org_a)
    s.execute(text(INSERTS["reviews"]), insert_params(seeded["x"], world.owner.id))
    s.execute(
        text("update milestones set status = 'approved' where id = :m"), {"m": seeded["x"].milestones[0]}
    )  # with its review
    authorize_payment(s, seeded["x"].milestones[0])  # and the approval with its invoice
    s.commit()
    assert (
        truth(admin_engine, "reviews", "submission_id = :s", s=seeded["x"].awaiting)[0]["reviewed_by"] == world.owner.id
    )


def test_the_submission_insert_is_one_the_contractors_user_may_make(world, seeded, act_as, admin_engine):
    s = act_as(world.contractor_x_user.id, world.org_a)
    s.execute(text(INSERTS["submissions"]), insert_params(seeded["x"], world.contractor_x_user.id))
    s.execute(
        text("update milestones set status = 'submitted' where id = :m"), {"m": seeded["x"].milestones[1]}
    )  # with it
    s.commit()
    assert len(truth(admin_engine, "submissions", "milestone_id = :m", m=seeded["x"].milestones[1])) == 1


@pytest.mark.parametrize("table", TABLES)
def test_no_role_can_update_submissions_evidence_or_reviews(world, seeded, act_as, admin_engine, table):
    before = snapshot(admin_engine)
    for who in EVERYONE:
        s = act_as(getattr(world, who).id, org_of(world, who))
        message = refused(s, UPDATES[table], {})
        assert "permission denied" in message, (who, message)
    assert snapshot(admin_engine) == before


@pytest.mark.parametrize("table", TABLES)
def test_no_role_can_delete_submissions_evidence_or_reviews(world, seeded, act_as, admin_engine, table):
    before = snapshot(admin_engine)
    for who in EVERYONE:
        s = act_as(getattr(world, who).id, org_of(world, who))
        message = refused(s, f"delete from {table}", {})
        assert "permission denied" in message, (who, message)
    assert snapshot(admin_engine) == before


def test_a_refused_insert_tells_another_org_nothing_about_org_as_milestone(world, seeded, act_as, admin_engine):
    submitted, planned = seeded["x"].milestones
    answers = []
    for milestone in (submitted, planned):
        s = act_as(world.contractor_z_user.id, world.org_b)
        params = {**insert_params(seeded["x"], world.contractor_z_user.id), "planned": milestone}
        with pytest.raises(DBAPIError) as exc:
            s.execute(text(INSERTS["submissions"]), params)
        s.rollback()
        answers.append((exc.value.orig.sqlstate, str(exc.value.orig).splitlines()[0]))
    assert "submitted" not in answers[0][1], answers
    assert answers[0] == answers[1], answers  # the same refusal whatever org A's milestone is doing
