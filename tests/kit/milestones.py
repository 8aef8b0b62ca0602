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
    m = conn.execute(
        text(
            "select m.status, m.amount_minor, e.owner_user_id,"
            " (select mm.user_id from memberships mm where mm.org_id = m.org_id and mm.contractor_id = m.contractor_id"
            "   order by mm.created_at limit 1) as contractor_user"
            " from milestones m join engagements e on e.id = m.engagement_id where m.id = :m"
        ),
        {"m": milestone_id},
    ).one()
    if status == "submitted":
        conn.execute(
            text(
                "insert into submissions (org_id, contractor_id, milestone_id, revision, note, links, submitted_by)"
                " select org_id, contractor_id, id,"
                "        (select coalesce(max(revision), 0) + 1 from submissions where milestone_id = :m),"
                "        'Done, see the link.', cast(:links as jsonb), :who from milestones where id = :m"
            ),
            {"m": milestone_id, "links": EVIDENCE_LINK, "who": m.contractor_user or m.owner_user_id},
        )
    elif m.status == "submitted" and status in ("approved", "planned"):
        decision, reason = ("approve", None) if status == "approved" else ("dispute", "Returned for changes.")
        conn.execute(
            text(
                "insert into reviews (org_id, contractor_id, milestone_id, submission_id, decision, reason,"
                "                     milestone_amount_minor, evidence_sha256, reviewed_by)"
                " select s.org_id, s.contractor_id, s.milestone_id, s.id, :d, :r, :amount, '{}', :who"
                "   from submissions s where s.milestone_id = :m order by s.revision desc limit 1"
            ),
            {"m": milestone_id, "d": decision, "r": reason, "amount": m.amount_minor, "who": m.owner_user_id},
        )
        if status == "approved":
            authorize_payment(conn, milestone_id)


def authorize_payment(conn, milestone_id) -> None:
    """The invoice an approval writes with it (the database wants one at commit); its number, dates and
    checks come from the database's guard, the amounts from the engagement's terms."""
    conn.execute(
        text(
            "insert into invoices (org_id, contractor_id, engagement_id, kind, milestone_id, review_id, description,"
            "                      currency, gross_minor, retainage_bps, retainage_minor, net_minor, fee_bps, fee_minor,"
            "                      total_minor, authorized_by)"
            " select r.org_id, r.contractor_id, m.engagement_id, 'milestone', m.id, r.id, m.title, e.currency, m.amount_minor,"
            "        t.bps, money_percent_of(m.amount_minor, t.bps), m.amount_minor - money_percent_of(m.amount_minor, t.bps),"
            "        e.service_fee_bps, money_percent_of(m.amount_minor, e.service_fee_bps),"
            "        m.amount_minor + money_percent_of(m.amount_minor, e.service_fee_bps), r.reviewed_by"
            "   from reviews r join milestones m on m.id = r.milestone_id join engagements e on e.id = m.engagement_id,"
            "        lateral (select case when exists (select 1 from invoices i where i.engagement_id = e.id"
            "                                           and i.kind = 'retainage_release') then 0 else e.retainage_bps end as bps) t"
            "  where r.milestone_id = :m and r.decision = 'approve'"
            "    and not exists (select 1 from invoices i where i.review_id = r.id)"
        ),
        {"m": milestone_id},
    )


def step_milestone(conn, milestone_id, status: str) -> None:
    """One legal move of the milestone to ``status``, on a connection of the owner role."""
    prepare_move(conn, milestone_id, status)
    conn.execute(text("update milestones set status = :s where id = :m"), {"s": status, "m": milestone_id})


def walk_milestone(conn, milestone_id, *statuses: str) -> None:
    for status in statuses:
        step_milestone(conn, milestone_id, status)
