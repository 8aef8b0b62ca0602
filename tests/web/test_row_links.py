"""``link`` (web/row_links.py) writes exactly what ``url_for`` writes for every row link the lists use."""

from __future__ import annotations

import uuid

import pytest
from flask import url_for

from backoffice.web.row_links import link

ROW_LINKS = [
    ("admin.contractor", "contractor_id"),
    ("admin.invite_contractor_user", "contractor_id"),
    ("admin.member_actions", "membership_id"),
    ("batches.download", "batch_id"),
    ("batches.pay", "batch_id"),
    ("batches.show", "batch_id"),
    ("batches.void", "batch_id"),
    ("documents.download", "document_id"),
    ("engagements.show", "engagement_id"),
    ("milestones.show", "milestone_id"),
    ("notifications.open_", "notification_id"),
    ("outbox.show", "message_id"),
    ("payments.invoice", "invoice_id"),
    ("retainage.report", "contractor_id"),  # a query argument, not a path segment
]


@pytest.mark.parametrize("base_url", ["http://localhost/", "http://example.test/behind/a/proxy/"])
@pytest.mark.parametrize("endpoint, name", ROW_LINKS)
def test_a_row_link_is_what_url_for_writes(app, endpoint, name, base_url):
    with app.test_request_context("/", base_url=base_url):
        for value in (uuid.uuid4(), str(uuid.uuid4()), uuid.uuid4()):  # the second and third from the cache
            assert link(endpoint, **{name: value}) == url_for(endpoint, **{name: value})


def test_a_link_with_no_value_or_several_is_url_fors(app):
    with app.test_request_context("/"):
        assert link("retainage.report") == url_for("retainage.report")
        assert link("payments.queue", contractor_id=None) == url_for("payments.queue", contractor_id=None)
        both = {"contractor_id": str(uuid.uuid4()), "status": "paid"}
        assert link("payments.queue", **both) == url_for("payments.queue", **both)
