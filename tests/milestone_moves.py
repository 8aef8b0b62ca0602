"""Moving a milestone along its legal path as the owner role, for tests that need a milestone in some
state without going through the pages. Work moves only with its evidence and its decision (the
database refuses a bare status change), so each step writes what the app would: a submission with a
link for "submitted", an approving review for "approved", a dispute for "submitted" -> "planned"."""
from __future__ import annotations

from sqlalchemy import text

EVIDENCE_LINK = '["https://example.com/evidence"]'


def prepare_move(conn, milestone_id, status: str) -> None:
    """Write what moving the milestone to ``status`` needs (a submission, a review), on a connection of
    the owner role, without moving it: the move must follow in the same transaction (the database
    checks at commit that a submission or review moved its milestone)."""
    m = conn.execute(text(
        "select m.status, m.amount_minor, e.owner_user_id,"
        " (select mm.user_id from memberships mm where mm.org_id = m.org_id and mm.contractor_id = m.contractor_id"
        "   order by mm.created_at limit 1) as contractor_user"
        " from milestones m join engagements e on e.id = m.engagement_id where m.id = :m"), {"m": milestone_id}).one()
    if status == "submitted":
        conn.execute(text(
            "insert into submissions (org_id, contractor_id, milestone_id, revision, note, links, submitted_by)"
            " select org_id, contractor_id, id,"
            "        (select coalesce(max(revision), 0) + 1 from submissions where milestone_id = :m),"
            "        'Done, see the link.', cast(:links as jsonb), :who from milestones where id = :m"),
            {"m": milestone_id, "links": EVIDENCE_LINK, "who": m.contractor_user or m.owner_user_id})
    elif m.status == "submitted" and status in ("approved", "planned"):
        decision, reason = ("approve", None) if status == "approved" else ("dispute", "Returned for changes.")
        conn.execute(text(
            "insert into reviews (org_id, contractor_id, milestone_id, submission_id, decision, reason,"
            "                     milestone_amount_minor, evidence_sha256, reviewed_by)"
            " select s.org_id, s.contractor_id, s.milestone_id, s.id, :d, :r, :amount, '{}', :who"
            "   from submissions s where s.milestone_id = :m order by s.revision desc limit 1"),
            {"m": milestone_id, "d": decision, "r": reason, "amount": m.amount_minor, "who": m.owner_user_id})


def step_milestone(conn, milestone_id, status: str) -> None:
    """One legal move of the milestone to ``status``, on a connection of the owner role."""
    prepare_move(conn, milestone_id, status)
    conn.execute(text("update milestones set status = :s where id = :m"), {"s": status, "m": milestone_id})


def walk_milestone(conn, milestone_id, *statuses: str) -> None:
    for status in statuses:
        step_milestone(conn, milestone_id, status)
