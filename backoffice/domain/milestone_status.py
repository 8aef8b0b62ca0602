"""What a milestone's status is called on every page, for every role (issue 22, item 2).

The stored status says where the work is (planned, submitted, approved, cancelled); a milestone sent back is
``planned`` again, which alone read "Planned" on one page and "Disputed" on another. So the words shown come
from here, from the status and the latest revision's decision: pages, lists and badges ask ``shown_status``
and never restate the rule.
"""

from __future__ import annotations

from typing import NamedTuple

# The decisions and policies by value (domain/reviews.Decision and PartialPolicy are StrEnums that equal these):
# importing reviews here would close a cycle through invoices and completion, whose task lines use this module.
DISPUTE, PARTIAL, SPLIT = "dispute", "partial", "split"


class ShownStatus(NamedTuple):
    code: str  # the badge's CSS class suffix (status-<code>)
    words: str


_PLAIN = {
    "planned": ShownStatus("planned", "Planned"),
    "submitted": ShownStatus("submitted", "Submitted"),
    "approved": ShownStatus("approved", "Approved"),
    "cancelled": ShownStatus("cancelled", "Cancelled"),
}

DISPUTED = ShownStatus("disputed", "Disputed")
CHANGES_REQUESTED = ShownStatus("changes_requested", "Changes requested")
PARTLY_APPROVED = ShownStatus("partly_approved", "Partly approved")


def decision_status(decision: str, partial_policy: str | None) -> ShownStatus:
    """The words of one review decision: a partial under route_back paid nothing and asked for changes, so it
    never reads like an approval; a partial under split approved (and paid) the approved part."""
    if decision == DISPUTE:
        return DISPUTED
    if decision == PARTIAL:
        return PARTLY_APPROVED if partial_policy == SPLIT else CHANGES_REQUESTED
    return _PLAIN["approved"]


def sent_back_by(status: str, last_decision: str | None) -> str | None:
    """The decision ('dispute' or 'partial') that sent a milestone back to the contractor, or None while the
    work is not back with them: a planned milestone whose latest revision was disputed or partly approved (a
    split partial leaves it approved, so only a route-back one is planned again)."""
    status = getattr(status, "value", status)
    last_decision = getattr(last_decision, "value", last_decision)
    return last_decision if status == "planned" and last_decision in (DISPUTE, PARTIAL) else None


def shown_status(status: str, last_decision: str | None = None, partial_policy: str | None = None) -> ShownStatus:
    """A milestone's status as people read it. ``last_decision`` and ``partial_policy`` are the latest
    revision's review (None while it waits for one): a planned milestone whose latest revision was disputed or
    partly approved under route_back is back with the contractor for that reason, and an approved one whose
    decision was a split partial was partly approved. Anything else reads as its stored status."""
    status = getattr(status, "value", status)
    last_decision = getattr(last_decision, "value", last_decision)
    if sent_back_by(status, last_decision):
        return decision_status(last_decision, partial_policy)
    if status == "approved" and last_decision == PARTIAL and partial_policy == SPLIT:
        return PARTLY_APPROVED
    return _PLAIN.get(status, ShownStatus(status, status.replace("_", " ").capitalize()))
