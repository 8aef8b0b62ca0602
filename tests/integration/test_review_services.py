"""Submitting work and deciding on it (DESIGN.md section 3) through the real services, as the real app role.

submit_work records a revision with its evidence and marks the milestone submitted; decide records one
review and approves the milestone or returns it to the contractor (or, under the split policy, approves
the part and adds the remainder by change order). Outcomes are read back as the owner role; a refused
call must leave every row of the organization exactly as it was.
"""

from __future__ import annotations

import hashlib

import pytest
from kit.engagements import owner_query, race, sign_in
from sqlalchemy import text

from backoffice.db import make_session_factory
from backoffice.domain.roles import Role
from backoffice.errors import Conflict, Forbidden, InvalidTransition, ValidationError
from backoffice.queries.reviews import milestone_detail
from backoffice.services import bootstrap, engagements, schedule
from backoffice.services.demo_evidence import photo_png
from backoffice.services.engagements import EngagementInput
from backoffice.services.evidence import UploadedFile
from backoffice.services.reviews import DecisionInput, decide
from backoffice.services.schedule import RowInput, ScheduleInput
from backoffice.services.submissions import SubmissionInput, submit_work

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = photo_png(16, 12)
NOTES = b"Site notes: old tiles stripped, battens checked.\n"
MiB = 1024 * 1024


# --- helpers ------------------------------------------------------------------------------------------


def active_milestones(act_as, admin_engine, world) -> list[dict]:
    """The milestones of an engagement contractor X accepted, owned by world.owner: 'Strip tiles'
    1,000.00 and 'Re-tile' 2,000.00, both planned."""
    session, actor = sign_in(act_as, world.owner, world.org_a)
    e = engagements.create_engagement(
        session, actor, EngagementInput(contractor_id=str(world.contractor_x), title="Roof")
    )
    schedule.save_schedule(
        session,
        actor,
        e.id,
        ScheduleInput(
            rows=[
                RowInput(title="Strip tiles", deliverable="Bare battens", amount="1,000.00", due_date="2030-01-15"),
                RowInput(title="Re-tile", amount="2,000.00", due_date="2030-02-15"),
            ]
        ),
    )
    engagements.perform(session, actor, e.id, "send")
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    engagements.perform(session, actor, e.id, "accept")
    return milestones(admin_engine, e.id)


def milestones(admin_engine, engagement_id) -> list[dict]:
    return owner_query(admin_engine, "select * from milestones where engagement_id = :e order by seq", e=engagement_id)


def submit(act_as, world, milestone_id, *, note="Tiles stripped.", links="", files=(("report.pdf", PDF),)):
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    return submit_work(
        session,
        actor,
        milestone_id,
        SubmissionInput(note=note, links=links, files=[UploadedFile.from_bytes(name, data) for name, data in files]),
    )


def decide_as(act_as, world, person, milestone_id, submission_id, decision, reason="", **extra):
    session, actor = sign_in(act_as, person, world.org_a)
    return decide(
        session,
        actor,
        milestone_id,
        DecisionInput(submission_id=str(submission_id), decision=decision, reason=reason, **extra),
    )


def set_org(admin_engine, world, **columns) -> None:
    """Change org A's settings as the owner role (partial_policy, evidence limits)."""
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    with admin_engine.begin() as conn:
        conn.execute(text(f"update organizations set {sets} where id = :o"), {**columns, "o": world.org_a})


def state(admin_engine, world) -> dict:
    """Every row of org A a refused call must leave untouched."""
    org = {"o": world.org_a}

    def q(sql):
        return owner_query(admin_engine, sql, **org)

    return {
        "milestones": q("select * from milestones where org_id = :o order by id"),
        "submissions": q("select * from submissions where org_id = :o order by id"),
        "files": q("select * from evidence_files where org_id = :o order by id"),
        "chunks": q(
            "select file_id, chunk_no, md5(data) from evidence_chunks where org_id = :o order by file_id, chunk_no"
        ),
        "reviews": q("select * from reviews where org_id = :o order by id"),
        "change_orders": q("select * from change_orders where org_id = :o order by id"),
        "lines": q("select * from change_order_lines where org_id = :o order by id"),
        "events": q("select seq, action, data from audit_events where org_id = :o order by seq"),
    }


def events(admin_engine, world, action) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from audit_events where org_id = :o and action = :a order by seq",
        o=world.org_a,
        a=action,
    )


def reviews_of(admin_engine, milestone_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from reviews where milestone_id = :m order by reviewed_at", m=milestone_id
    )


# --- submitting ---------------------------------------------------------------------------------------


def test_submitting_work_keeps_every_file_with_its_type_size_hash_and_bytes(act_as, admin_engine, world):
    m, _ = active_milestones(act_as, admin_engine, world)
    files = (("report.pdf", PDF), ("site.png", PNG), ("notes.txt", NOTES))
    sub = submit(act_as, world, m["id"], links="https://example.com/album\n", files=files)
    (row,) = owner_query(admin_engine, "select * from submissions where milestone_id = :m", m=m["id"])
    assert (row["id"], row["revision"], row["note"], row["links"]) == (
        sub.id,
        1,
        "Tiles stripped.",
        ["https://example.com/album"],
    )
    stored = owner_query(
        admin_engine, "select * from evidence_files where submission_id = :s order by position", s=sub.id
    )
    assert [(f["file_name"], f["content_type"], f["size_bytes"], f["sha256"]) for f in stored] == [
        (name, ctype, len(data), hashlib.sha256(data).hexdigest())
        for (name, data), ctype in zip(files, ("application/pdf", "image/png", "text/plain"), strict=True)
    ]
    for f, (_, data) in zip(stored, files, strict=True):
        chunks = owner_query(
            admin_engine, "select data from evidence_chunks where file_id = :f order by chunk_no", f=f["id"]
        )
        assert b"".join(bytes(c["data"]) for c in chunks) == data
    assert milestones(admin_engine, m["engagement_id"])[0]["status"] == "submitted"


def test_the_submitted_event_records_every_files_name_size_type_and_hash(act_as, admin_engine, world):
    m, _ = active_milestones(act_as, admin_engine, world)
    sub = submit(act_as, world, m["id"], files=(("report.pdf", PDF), ("site.png", PNG)))
    (event,) = events(admin_engine, world, "milestone.submitted")
    assert event["entity_id"] == str(m["id"]) and event["actor_user_id"] == world.contractor_x_user.id
    assert event["data"]["submission_id"] == str(sub.id) and event["data"]["revision"] == 1
    assert event["data"]["files"] == [
        {"name": "report.pdf", "size": len(PDF), "type": "application/pdf", "sha256": hashlib.sha256(PDF).hexdigest()},
        {"name": "site.png", "size": len(PNG), "type": "image/png", "sha256": hashlib.sha256(PNG).hexdigest()},
    ]


# (files or links, limits to set on the org first, the field in error, words the message must contain)
BAD_SUBMISSIONS = {
    "no evidence": ({"files": ()}, {}, "evidence", "at least one file or add a link"),
    "no note": ({"note": "   ", "links": "https://example.com/a"}, {}, "note", ""),
    "javascript link": ({"links": "javascript:alert(1)"}, {}, "links", "not a web link"),
    "ftp link": ({"links": "https://example.com/ok\nftp://example.com/x"}, {}, "links", "Line 2"),
    "elf binary": (
        {"files": (("tool.bin", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120),)},
        {},
        "files",
        "“tool.bin” is not an accepted type",
    ),
    "exe": (
        {"files": (("setup.exe", b"MZ\x90\x00\x03" + b"\x00" * 200),)},
        {},
        "files",
        "“setup.exe” is not an accepted type",
    ),
    "html": (
        {"files": (("page.html", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"),)},
        {},
        "files",
        "“page.html” is not an accepted type",
    ),
    "html named txt": (
        {"files": (("notes.txt", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"),)},
        {},
        "files",
        "“notes.txt” is not an accepted type",
    ),
    "pdf named png": ({"files": (("photo.png", PDF),)}, {}, "files", "“photo.png” is named .png"),
    "empty file": ({"files": (("empty.pdf", b""),)}, {}, "files", "“empty.pdf” is empty"),
    "parent path": ({"files": (("../x.pdf", PDF),)}, {}, "files", "“../x.pdf” has a folder path"),
    "windows path": ({"files": (("..\\..\\x.pdf", PDF),)}, {}, "files", "folder path"),
    "absolute path": ({"files": (("/etc/x.pdf", PDF),)}, {}, "files", "folder path"),
    "drive path": ({"files": (("C:x.pdf", PDF),)}, {}, "files", "folder path"),
    "dot dot": ({"files": (("..", PDF),)}, {}, "files", "folder path"),
    "control character": ({"files": (("x\n.pdf", PDF),)}, {}, "files", "has control"),
    "too many files": ({"files": tuple((f"n{i}.txt", NOTES) for i in range(21))}, {}, "files", "at most 20 files"),
    "over the org's file count": (
        {"files": (("a.txt", NOTES), ("b.txt", NOTES), ("c.txt", NOTES))},
        {"evidence_max_files": 2},
        "files",
        "at most 2 files",
    ),
    "over the org's file size": (
        {"files": (("big.txt", b"a" * (MiB + MiB // 2)),)},
        {"evidence_max_file_mb": 1},
        "files",
        "“big.txt” is 1.5 MB, more than the 1 MB allowed per file",
    ),
    "over the org's submission size": (
        {"files": (("a.txt", b"a" * (MiB // 2 + 1)), ("b.txt", b"b" * (MiB // 2)))},
        {"evidence_max_submission_mb": 1},
        "files",
        "one submission can carry at most 1 MB",
    ),
    "one good file, one bad": ({"files": (("report.pdf", PDF), ("../x.pdf", PDF))}, {}, "files", "“../x.pdf”"),
}


@pytest.mark.parametrize("case", BAD_SUBMISSIONS)
def test_a_refused_submission_raises_validation_error_and_keeps_nothing(act_as, admin_engine, world, case):
    given, limits, field, words = BAD_SUBMISSIONS[case]
    m, _ = active_milestones(act_as, admin_engine, world)
    if limits:
        set_org(admin_engine, world, **limits)
    before = state(admin_engine, world)
    with pytest.raises(ValidationError) as exc:
        submit(act_as, world, m["id"], **given)
    assert field in exc.value.fields, exc.value.fields
    assert words in exc.value.fields[field], exc.value.fields[field]
    assert state(admin_engine, world) == before


def test_a_file_just_over_the_limit_is_reported_with_a_size_that_is_over_the_limit(act_as, admin_engine, world):
    m, _ = active_milestones(act_as, admin_engine, world)
    set_org(admin_engine, world, evidence_max_file_mb=1)
    with pytest.raises(ValidationError) as exc:
        submit(act_as, world, m["id"], files=(("big.txt", b"a" * (MiB + 1)),))
    message = exc.value.fields["files"]
    assert "“big.txt” is" in message and "more than the 1 MB allowed per file" in message, message
    assert "is 1 MB, more than the 1 MB" not in message, message


def test_two_contractor_sessions_submitting_the_same_milestone_at_once_make_one_submission(
    act_as, app_sessions, admin_engine, world
):
    m, _ = active_milestones(act_as, admin_engine, world)
    act_as(None, None)  # the fixture's session holds nothing while the contenders run
    outcomes = race(
        app_sessions,
        world.org_a,
        [world.contractor_x_user] * 2,
        lambda session, actor, i: submit_work(
            session,
            actor,
            m["id"],
            SubmissionInput(note=f"Done ({i}).", files=[UploadedFile.from_bytes(f"r{i}.pdf", PDF)]),
        ),
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    (loser,) = [o for o in outcomes if isinstance(o, Exception)]
    assert isinstance(loser, InvalidTransition) and "only a planned milestone" in loser.message, repr(loser)
    (row,) = owner_query(admin_engine, "select * from submissions where milestone_id = :m", m=m["id"])
    assert row["revision"] == 1
    assert len(owner_query(admin_engine, "select id from evidence_files where submission_id = :s", s=row["id"])) == 1
    assert len(events(admin_engine, world, "milestone.submitted")) == 1


# --- deciding -----------------------------------------------------------------------------------------


def test_approving_approves_the_milestone_and_records_the_evidence_hashes(act_as, admin_engine, world):
    m, _ = active_milestones(act_as, admin_engine, world)
    sub = submit(act_as, world, m["id"], files=(("report.pdf", PDF), ("site.png", PNG)))
    decide_as(act_as, world, world.owner, m["id"], sub.id, "approve")
    hashes = [hashlib.sha256(PDF).hexdigest(), hashlib.sha256(PNG).hexdigest()]
    (review,) = reviews_of(admin_engine, m["id"])
    assert (review["decision"], review["reviewed_by"], review["evidence_sha256"]) == ("approve", world.owner.id, hashes)
    assert review["milestone_amount_minor"] == 100_000
    assert milestones(admin_engine, m["engagement_id"])[0]["status"] == "approved"
    (event,) = events(admin_engine, world, "milestone.approved")
    assert [f["sha256"] for f in event["data"]["evidence"]] == hashes
    assert event["data"]["review_id"] == str(review["id"])


@pytest.mark.parametrize(
    ("decision", "event"), [("dispute", "milestone.disputed"), ("partial", "milestone.partially_approved")]
)
def test_dispute_and_route_back_partial_return_the_milestone_to_the_contractor_with_the_reason(
    act_as, admin_engine, world, decision, event
):
    m, _ = active_milestones(act_as, admin_engine, world)
    sub = submit(act_as, world, m["id"], files=(("notes.txt", NOTES),))
    reason = "The north slope still has old tiles."
    decide_as(act_as, world, world.admin, m["id"], sub.id, decision, reason)
    after = milestones(admin_engine, m["engagement_id"])[0]
    assert (after["status"], after["amount_minor"]) == ("planned", 100_000)
    (review,) = reviews_of(admin_engine, m["id"])
    assert (review["decision"], review["reason"], review["approved_amount_minor"]) == (decision, reason, None)
    assert review["partial_policy"] == ("route_back" if decision == "partial" else None)
    (logged,) = events(admin_engine, world, event)
    assert logged["data"]["reason"] == reason
    assert [f["sha256"] for f in logged["data"]["evidence"]] == [hashlib.sha256(NOTES).hexdigest()]
    # The contractor reads the reason on its milestone and submits the next revision.
    session, _actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    detail = milestone_detail(session, m["id"])
    session.rollback()
    assert detail.revisions[0].review.reason == reason
    second = submit(act_as, world, m["id"], note="North slope done too.")
    assert second.revision == 2
    assert milestones(admin_engine, m["engagement_id"])[0]["status"] == "submitted"


@pytest.mark.parametrize(
    ("typed", "part"), [({"approved_amount": "400.00"}, 40_000), ({"approved_percent": "25"}, 25_000)]
)
def test_a_split_partial_approves_the_part_and_adds_the_remainder_by_change_order(
    act_as, admin_engine, world, typed, part
):
    set_org(admin_engine, world, partial_policy="split")
    m, _ = active_milestones(act_as, admin_engine, world)
    sub = submit(act_as, world, m["id"])
    decide_as(act_as, world, world.owner, m["id"], sub.id, "partial", "Only the south slope is done.", **typed)
    after = milestones(admin_engine, m["engagement_id"])
    assert [(r["title"], r["amount_minor"], r["status"]) for r in after] == [
        ("Strip tiles", part, "approved"),
        ("Re-tile", 200_000, "planned"),
        ("Strip tiles (remainder)", 100_000 - part, "planned"),
    ]
    assert (after[2]["deliverable"], after[2]["due_date"]) == (m["deliverable"], m["due_date"])
    (review,) = reviews_of(admin_engine, m["id"])
    assert (review["partial_policy"], review["approved_amount_minor"], review["milestone_amount_minor"]) == (
        "split",
        part,
        100_000,
    )
    (co,) = owner_query(admin_engine, "select * from change_orders where engagement_id = :e", e=m["engagement_id"])
    assert co["number"] == 1 and co["contract_value_before"] == co["contract_value_after"] == 300_000
    assert sum(r["amount_minor"] for r in after) == 300_000


BAD_DECISIONS = {
    "unknown decision": ("route_back", {"decision": "maybe"}, "decision"),
    "dispute without reason": ("route_back", {"decision": "dispute", "reason": ""}, "reason"),
    "dispute with blank reason": ("route_back", {"decision": "dispute", "reason": "  \n "}, "reason"),
    "partial without reason": ("route_back", {"decision": "partial"}, "reason"),
    "split without reason": ("split", {"decision": "partial", "approved_amount": "400.00"}, "reason"),
    "split without a part": ("split", {"decision": "partial", "reason": "Half."}, "approved_amount"),
    "split with amount and percent": (
        "split",
        {"decision": "partial", "reason": "Half.", "approved_amount": "500.00", "approved_percent": "50"},
        "approved_amount",
    ),
    "split of nothing": (
        "split",
        {"decision": "partial", "reason": "Half.", "approved_amount": "0.00"},
        "approved_amount",
    ),
    "split of everything": (
        "split",
        {"decision": "partial", "reason": "Half.", "approved_amount": "1,000.00"},
        "approved_amount",
    ),
    "split of more": (
        "split",
        {"decision": "partial", "reason": "Half.", "approved_amount": "1,500.00"},
        "approved_amount",
    ),
    "split of a negative": (
        "split",
        {"decision": "partial", "reason": "Half.", "approved_amount": "-10.00"},
        "approved_amount",
    ),
    "split of words": (
        "split",
        {"decision": "partial", "reason": "Half.", "approved_amount": "lots"},
        "approved_amount",
    ),
    "split of 100 percent": (
        "split",
        {"decision": "partial", "reason": "Half.", "approved_percent": "100"},
        "approved_amount",
    ),
    "split of 0 percent": (
        "split",
        {"decision": "partial", "reason": "Half.", "approved_percent": "0"},
        "approved_amount",
    ),
}


@pytest.mark.parametrize("case", BAD_DECISIONS)
def test_a_refused_decision_raises_validation_error_and_changes_nothing(act_as, admin_engine, world, case):
    policy, typed, field = BAD_DECISIONS[case]
    set_org(admin_engine, world, partial_policy=policy)
    m, _ = active_milestones(act_as, admin_engine, world)
    sub = submit(act_as, world, m["id"])
    before = state(admin_engine, world)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(ValidationError) as exc:
        decide(session, actor, m["id"], DecisionInput(submission_id=str(sub.id), **typed))
    assert field in exc.value.fields, exc.value.fields
    assert state(admin_engine, world) == before


@pytest.mark.parametrize("who", ["contractor_x_user", "finance", "other_owner"])
def test_only_the_engagements_owner_or_an_admin_may_decide(act_as, admin_engine, world, password_hash, who):
    m, _ = active_milestones(act_as, admin_engine, world)
    sub = submit(act_as, world, m["id"])
    person = getattr(world, who, None)
    if who == "other_owner":
        with make_session_factory(admin_engine)() as session:
            person = bootstrap.create_user(
                session,
                email=f"owner2-{world.suffix}@example.com",
                name="Olga Other",
                password_hash=password_hash,
                org_id=world.org_a,
                role=Role.OWNER,
            )
            session.commit()
    before = state(admin_engine, world)
    with pytest.raises(Forbidden):
        decide_as(act_as, world, person, m["id"], sub.id, "approve")
    assert state(admin_engine, world) == before


def test_deciding_on_an_earlier_revision_is_a_conflict_naming_the_newer_revision(act_as, admin_engine, world):
    m, _ = active_milestones(act_as, admin_engine, world)
    first = submit(act_as, world, m["id"])
    decide_as(act_as, world, world.owner, m["id"], first.id, "dispute", "Missing photos.")
    submit(act_as, world, m["id"], files=(("site.png", PNG),))
    before = state(admin_engine, world)
    with pytest.raises(Conflict) as exc:
        decide_as(act_as, world, world.admin, m["id"], first.id, "approve")
    assert exc.value.message.startswith("Revision 2 was submitted after the one you were shown."), exc.value.message
    assert state(admin_engine, world) == before


@pytest.mark.parametrize("shown", ["", "not-an-id", "00000000-0000-4000-8000-000000000000"])
def test_a_decision_that_does_not_name_the_revision_shown_is_a_conflict(act_as, admin_engine, world, shown):
    m, _ = active_milestones(act_as, admin_engine, world)
    submit(act_as, world, m["id"])
    before = state(admin_engine, world)
    with pytest.raises(Conflict):
        decide_as(act_as, world, world.owner, m["id"], shown, "approve")
    assert state(admin_engine, world) == before


def test_deciding_again_is_a_conflict_naming_who_decided(act_as, admin_engine, world):
    m, _ = active_milestones(act_as, admin_engine, world)
    sub = submit(act_as, world, m["id"])
    decide_as(act_as, world, world.admin, m["id"], sub.id, "approve")
    before = state(admin_engine, world)
    for decision, reason in (("approve", ""), ("dispute", "Changed my mind.")):
        with pytest.raises(Conflict) as exc:
            decide_as(act_as, world, world.owner, m["id"], sub.id, decision, reason)
        assert exc.value.message.startswith("Already decided by Ada Admin at "), exc.value.message
    assert state(admin_engine, world) == before


# --- deciding at the same moment ----------------------------------------------------------------------


def test_ten_reviewers_deciding_the_same_submission_at_once_make_exactly_one_decision(
    act_as, app_sessions, admin_engine, world
):
    m, _ = active_milestones(act_as, admin_engine, world)
    sub = submit(act_as, world, m["id"])
    act_as(None, None)
    people = [world.owner if i % 2 else world.admin for i in range(10)]
    choices = [("approve", "") if i % 3 else ("dispute", f"Reviewer {i} disputes.") for i in range(10)]
    outcomes = race(
        app_sessions,
        world.org_a,
        people,
        lambda session, actor, i: decide(
            session,
            actor,
            m["id"],
            DecisionInput(submission_id=str(sub.id), decision=choices[i][0], reason=choices[i][1]),
        ),
    )

    winners = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1 and len(losers) == 9, outcomes
    assert all(isinstance(o, Conflict) for o in losers), [repr(o) for o in losers]
    (winner,) = winners
    name = "Omar Owner" if people[winner] == world.owner else "Ada Admin"
    assert all(o.message.startswith(f"Already decided by {name} at ") for o in losers), [o.message for o in losers]
    (review,) = reviews_of(admin_engine, m["id"])
    assert (review["id"], review["decision"], review["reviewed_by"]) == (
        outcomes[winner].id,
        choices[winner][0],
        people[winner].id,
    )
    status = "approved" if choices[winner][0] == "approve" else "planned"
    assert milestones(admin_engine, m["engagement_id"])[0]["status"] == status
    decided = [e for a in ("milestone.approved", "milestone.disputed") for e in events(admin_engine, world, a)]
    assert len(decided) == 1
