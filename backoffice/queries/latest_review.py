"""The latest revision's review of a milestone, as SQL to join: what domain/milestone_status.shown_status needs
to say why a milestone was sent back (queries/engagements.py and queries/completion.py both join it). A module of
its own because engagements imports completion."""

from __future__ import annotations


# The latest revision's review (none while it waits, or before any submission), for shown_status: one probe of
# the (milestone_id, revision) key per row of the page, after the page is picked, and only for the statuses whose
# words depend on it (planned: sent back?; approved: partly?); the status test is a one-time filter per row, so a
# submitted or cancelled row costs no probe.
def latest_review_join(alias: str = "m", org_id=None) -> str:
    return f"""
      left join lateral (
        select r.decision, r.partial_policy from submissions s left join reviews r on r.submission_id = s.id
         where {alias}.status in ('planned', 'approved') and s.milestone_id = {alias}.id{_scope(org_id)}
         order by s.revision desc limit 1) lr on true"""


def _scope(org_id) -> str:
    return " and s.org_id = :org_id" if org_id else ""
