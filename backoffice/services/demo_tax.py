"""Demo tax forms (issue 18, items 5 and 6), through the real services: Acme requires a tax form before payment;
Northwind's user filled in a complete W-9; Bluebird has an approved invoice but no W-9, so it waits (the invoice
page and the queue say why); and the 1099 year end has figures from demo_money's and demo_stripe's payments to
Northwind."""

from __future__ import annotations

import dataclasses
from datetime import date

from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.models import Organization
from backoffice.services import engagements as engagement_service
from backoffice.services import organizations, tax_profiles
from backoffice.services.demo_engagements import _deliver, _draft, _row, schedule_milestones

# A made-up company number (an EIN, not a person's SSN): demo data never looks like someone's identity.
NINA_EIN = "98-7654321"


def seed(session: Session, *, key: str, owner: Actor, admin: Actor, nina: Actor, ben: Actor) -> None:
    tax_profiles.save_profile(
        session,
        nina,
        tax_profiles.TaxFormInput(
            kind="w9",
            name="Northwind Design Ltd",
            business_name="Northwind Design",
            classification="llc_s",
            tin_type="ein",
            tin=NINA_EIN,
            address_line1="410 Harbor Road, Suite 3",
            city="Portland",
            region="OR",
            postal_code="97209",
            certify=True,
        ),
        key=key,
    )
    # Bluebird's small job, approved: with no W-9 on file it is neither exported nor paid.
    inspection = _draft(
        session,
        owner,
        ben.contractor_id,
        "Panel inspection, warehouse B",
        "PO-88240",
        [_row("Inspection report", "Panel schedule and thermal scan of every board.", "1,450.00", date.today())],
    )
    engagement_service.perform(session, owner, inspection.id, "send")
    engagement_service.perform(session, ben, inspection.id, "accept")
    for milestone in schedule_milestones(session, inspection.id):
        _deliver(session, ben, owner, milestone)

    # Acme's admin turns the rule on, through the settings page's service.
    org = session.get(Organization, admin.org_id)
    current = {f.name: getattr(org, f.name) for f in dataclasses.fields(organizations.OrgSettings)}
    organizations.update_settings(session, admin, organizations.OrgSettings(**current | {"tax_form_required": True}))
