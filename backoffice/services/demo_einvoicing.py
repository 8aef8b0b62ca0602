"""Demo e-invoicing (issue 21): Acme's and Northwind's e-invoicing details and their self-billing agreement, which
Nina confirmed; Globex and Kestrel the same across a border (reverse charge). Bluebird has details but no agreement,
so its invoices' pages say what stops their e-invoice. Written before the worker runs the documents jobs the demo's
authorizations queued, so the demo's first authorized invoice gets its UBL e-invoice."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work

_PROFILE = text(
    """
    insert into einvoice_profiles (org_id, contractor_id, legal_name, street, city, postal_code, country, tax_id,
                                   tax_scheme, endpoint_scheme, endpoint_id, vat_category, vat_bps, updated_by)
    values (:org, :contractor, :name, :street, :city, :postal, :country, :tax_id, :scheme, :eas, :endpoint,
            :category, :bps, :by)
    """
)
_AGREEMENT = text(
    """
    insert into self_billing_agreements (org_id, contractor_id, agreed_on, terms, recorded_by)
    values (:org, :contractor, current_date - 30, :terms, :by) returning id
    """
)
TERMS = (
    "{org} issues the invoices for the services {contractor} supplies under its engagements, on {contractor}'s"
    " behalf (self-billing, EU VAT Directive 2006/112/EC art. 224). {contractor} accepts each invoice in backoffice"
    " or rejects it with a reason within 14 days; silence counts as acceptance. {contractor} issues no invoices of"
    " its own for the same services, and tells {org} at once of any change to its VAT status."
)


def _profile(session, org, contractor, by, **values) -> None:
    session.execute(_PROFILE, {"org": org, "contractor": contractor, "by": by, "bps": 0, "category": ""} | values)


def _agreement(session, org, contractor, org_name, contractor_name, by, confirmed_by: uuid.UUID | None) -> None:
    terms = TERMS.format(org=org_name, contractor=contractor_name)
    agreement = session.execute(
        _AGREEMENT, {"org": org, "contractor": contractor, "terms": terms, "by": by}
    ).scalar_one()
    if confirmed_by:
        session.execute(
            text("update self_billing_agreements set confirmed_by = :by where org_id = :org and id = :id"),
            {"by": confirmed_by, "org": org, "id": agreement},
        )


def seed(
    session: Session,
    *,
    admin: Actor,
    nina: Actor,
    bluebird_id: uuid.UUID,
    globex_admin_id: uuid.UUID,
    globex_id: uuid.UUID,
    kestrel_id: uuid.UUID,
) -> None:
    acme = admin.org_id
    with unit_of_work(session):
        _profile(
            session,
            acme,
            None,
            admin.user_id,
            name="Acme Renovations Inc.",
            street="100 Market Street",
            city="San Francisco",
            postal="94105",
            country="US",
            tax_id="12-3456789",
            scheme="TAX",
            eas="9959",
            endpoint="123456789",
        )
        _profile(
            session,
            acme,
            nina.contractor_id,
            nina.user_id,
            name="Northwind Design Ltd",
            street="410 Harbor Road, Suite 3",
            city="Portland",
            postal="97209",
            country="US",
            tax_id="98-7654321",
            scheme="TAX",
            eas="9959",
            endpoint="987654321",
            category="O",
        )
        _profile(
            session,
            acme,
            bluebird_id,
            admin.user_id,
            name="Bluebird Electrical LLC",
            street="22 Foundry Lane",
            city="Oakland",
            postal="94607",
            country="US",
            tax_id="",
            scheme="TAX",
            eas="",
            endpoint="",
            category="O",
        )
        _agreement(
            session,
            acme,
            nina.contractor_id,
            "Acme Renovations Inc.",
            "Northwind Design Ltd",
            admin.user_id,
            nina.user_id,
        )
        _profile(
            session,
            globex_id,
            None,
            globex_admin_id,
            name="Globex Facilities B.V.",
            street="Keizersgracht 12",
            city="Amsterdam",
            postal="1015 CN",
            country="NL",
            tax_id="NL123456789B01",
            scheme="VAT",
            eas="9944",
            endpoint="NL123456789B01",
        )
        _profile(
            session,
            globex_id,
            kestrel_id,
            globex_admin_id,
            name="Kestrel Facades GmbH",
            street="Fassadenweg 4",
            city="Köln",
            postal="50667",
            country="DE",
            tax_id="DE123456789",
            scheme="VAT",
            eas="9930",
            endpoint="DE123456789",
            category="AE",
        )
        _agreement(
            session, globex_id, kestrel_id, "Globex Facilities B.V.", "Kestrel Facades GmbH", globex_admin_id, None
        )
