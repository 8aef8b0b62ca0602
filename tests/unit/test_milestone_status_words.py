"""One status vocabulary (issue 22, item 2): the words every page shows for a milestone, written out."""

import pytest

from backoffice.domain.milestone_status import decision_status, sent_back_by, shown_status
from backoffice.domain.reviews import Decision, PartialPolicy

# (stored status, latest revision's decision, its partial policy) -> (badge code, words)
TABLE = [
    ("planned", None, None, "planned", "Planned"),
    ("planned", "dispute", None, "disputed", "Disputed"),
    ("planned", "partial", "route_back", "changes_requested", "Changes requested"),
    ("planned", "approve", None, "planned", "Planned"),
    ("submitted", None, None, "submitted", "Submitted"),
    ("submitted", "dispute", None, "submitted", "Submitted"),
    ("submitted", "partial", "route_back", "submitted", "Submitted"),
    ("approved", "approve", None, "approved", "Approved"),
    ("approved", "partial", "split", "partly_approved", "Partly approved"),
    ("approved", None, None, "approved", "Approved"),
    ("cancelled", None, None, "cancelled", "Cancelled"),
    ("cancelled", "dispute", None, "cancelled", "Cancelled"),
]


@pytest.mark.parametrize(("status", "decision", "policy", "code", "words"), TABLE)
def test_a_milestone_shows_why_it_was_sent_back_and_a_split_reads_partly_approved(
    status, decision, policy, code, words
):
    assert tuple(shown_status(status, decision, policy)) == (code, words)


def test_the_enums_read_the_same_as_their_values():
    assert tuple(shown_status("planned", Decision.DISPUTE)) == ("disputed", "Disputed")
    assert tuple(shown_status("planned", Decision.APPROVE)) == ("planned", "Planned")
    assert tuple(shown_status("approved", Decision.PARTIAL, PartialPolicy.SPLIT)) == (
        "partly_approved",
        "Partly approved",
    )


@pytest.mark.parametrize(
    ("decision", "policy", "words"),
    [
        ("approve", None, "Approved"),
        ("dispute", None, "Disputed"),
        ("partial", "route_back", "Changes requested"),
        ("partial", "split", "Partly approved"),
    ],
)
def test_a_review_decision_reads_as_what_it_did(decision, policy, words):
    assert decision_status(decision, policy).words == words


def test_a_partial_approval_never_reads_like_a_dispute():
    words = {shown_status(s, "partial", p).words for s in ("planned", "approved") for p in ("route_back", "split")}
    assert "Disputed" not in words


@pytest.mark.parametrize(
    ("status", "decision", "sent_back"),
    [
        ("planned", "dispute", "dispute"),
        ("planned", "partial", "partial"),
        ("planned", "approve", None),
        ("planned", None, None),
        ("submitted", "dispute", None),
        ("approved", "partial", None),
        ("cancelled", "dispute", None),
    ],
)
def test_only_a_planned_milestone_whose_latest_revision_was_disputed_or_partly_approved_is_sent_back(
    status, decision, sent_back
):
    assert sent_back_by(status, decision) == sent_back
