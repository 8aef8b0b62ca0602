"""Demo data for the one-command start: two organizations, every role, a few contractors."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.config import load_settings, tax_id_key_for
from backoffice.db import unit_of_work
from backoffice.domain.roles import Role
from backoffice.models import Organization
from backoffice.services import (
    bootstrap,
    demo_completion,
    demo_controls,
    demo_einvoicing,
    demo_engagements,
    demo_money,
    demo_preferences,
    demo_projects,
    demo_tax,
)
from backoffice.services.auth import hash_password

DEMO_PASSWORD = "backoffice-demo"
DEMO_ORG = "Acme Renovations"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    org: str


DEMO_LOGINS = [
    DemoLogin("admin@acme.example", "admin", "Acme Renovations (also admin of Globex Facilities)"),
    DemoLogin("owner@acme.example", "owner", "Acme Renovations"),
    DemoLogin("finance@acme.example", "finance", "Acme Renovations"),
    DemoLogin("nina@northwind.example", "contractor", "Acme Renovations, for Northwind Design Ltd"),
    DemoLogin(
        "ben@bluebird.example", "contractor", "Acme Renovations, for Bluebird Electrical LLC (a work request to accept)"
    ),
    DemoLogin(
        "hal@harbor.example", "contractor", "Acme Renovations, for Harbor Surveying Co. (a project it was awarded)"
    ),
]


def has_data(session: Session) -> bool:
    return session.execute(select(func.count()).select_from(Organization)).scalar_one() > 0


def seed(session: Session, *, tax_id_key: str | None = None) -> list[DemoLogin]:
    """Create the demo world (owner role, empty database). Commits: the organizations and people first,
    then each step through the services, which commit as they would for a person. ``tax_id_key`` encrypts the
    demo's TIN (default: the server's, config.tax_id_key_for, so that the app reads it back)."""
    pw = hash_password(DEMO_PASSWORD)
    with unit_of_work(session):
        acme = bootstrap.create_org(session, DEMO_ORG, "USD", 1000, 30)
        northwind = bootstrap.create_contractor(
            session, acme.id, "Northwind Design Ltd", "billing@northwind.example", "V-1001", "ACH •••• 4821"
        )
        bluebird = bootstrap.create_contractor(
            session, acme.id, "Bluebird Electrical LLC", "accounts@bluebird.example", "V-1002", "Check"
        )
        harbor = bootstrap.create_contractor(
            session, acme.id, "Harbor Surveying Co.", "office@harbor.example", None, None
        )
        ada = bootstrap.create_user(
            session, email="admin@acme.example", name="Ada Admin", password_hash=pw, org_id=acme.id, role=Role.ADMIN
        )
        owner = bootstrap.create_user(
            session, email="owner@acme.example", name="Omar Owner", password_hash=pw, org_id=acme.id, role=Role.OWNER
        )
        fiona = bootstrap.create_user(
            session,
            email="finance@acme.example",
            name="Fiona Finance",
            password_hash=pw,
            org_id=acme.id,
            role=Role.FINANCE,
        )
        nina = bootstrap.create_user(
            session,
            email="nina@northwind.example",
            name="Nina Northwind",
            password_hash=pw,
            org_id=acme.id,
            role=Role.CONTRACTOR,
            contractor_id=northwind.id,
        )
        ben = bootstrap.create_user(
            session,
            email="ben@bluebird.example",
            name="Ben Bluebird",
            password_hash=pw,
            org_id=acme.id,
            role=Role.CONTRACTOR,
            contractor_id=bluebird.id,
        )
        hal = bootstrap.create_user(
            session,
            email="hal@harbor.example",
            name="Hal Harbor",
            password_hash=pw,
            org_id=acme.id,
            role=Role.CONTRACTOR,
            contractor_id=harbor.id,
        )

        globex = bootstrap.create_org(session, "Globex Facilities", "EUR", 500, 14)
        kestrel = bootstrap.create_contractor(
            session, globex.id, "Kestrel Facades GmbH", "rechnung@kestrel.example", "K-77", "SEPA •••• 9912"
        )
        bootstrap.create_user(
            session, email="admin@acme.example", name="Ada Admin", password_hash=pw, org_id=globex.id, role=Role.ADMIN
        )
        gina = bootstrap.create_user(
            session,
            email="owner@globex.example",
            name="Gina Globex",
            password_hash=pw,
            org_id=globex.id,
            role=Role.OWNER,
        )

    # Before any event: the worker writes each notice by its people's preferences.
    demo_preferences.seed(session, omar=owner.id, nina=nina.id)
    omar = Actor(owner.id, acme.id, Role.OWNER, owner.email, owner.name)
    nina_actor = Actor(nina.id, acme.id, Role.CONTRACTOR, nina.email, nina.name, contractor_id=northwind.id)
    demo_engagements.seed(
        session, owner=omar, contractor=nina_actor, other_contractor_id=bluebird.id, third_contractor_id=harbor.id
    )
    demo_money.seed(
        session,
        owner=omar,
        finance=Actor(fiona.id, acme.id, Role.FINANCE, fiona.email, fiona.name),
        admin=Actor(ada.id, acme.id, Role.ADMIN, ada.email, ada.name),
    )
    demo_controls.seed(
        session,
        owner=omar,
        contractor=nina_actor,
        finance=Actor(fiona.id, acme.id, Role.FINANCE, fiona.email, fiona.name),
        admin=Actor(ada.id, acme.id, Role.ADMIN, ada.email, ada.name),
    )
    demo_projects.seed(
        session,
        admin=Actor(ada.id, acme.id, Role.ADMIN, ada.email, ada.name),
        owner=omar,
        nina=nina_actor,
        ben=Actor(ben.id, acme.id, Role.CONTRACTOR, ben.email, ben.name, contractor_id=bluebird.id),
        hal=Actor(hal.id, acme.id, Role.CONTRACTOR, hal.email, hal.name, contractor_id=harbor.id),
    )
    demo_completion.seed(
        session, owner=omar, nina=nina_actor, finance=Actor(fiona.id, acme.id, Role.FINANCE, fiona.email, fiona.name)
    )
    demo_engagements.seed_second_org(
        session, owner=Actor(gina.id, globex.id, Role.OWNER, gina.email, gina.name), contractor_id=kestrel.id
    )
    demo_tax.seed(
        session,
        key=tax_id_key or tax_id_key_for(load_settings()),
        owner=omar,
        admin=Actor(ada.id, acme.id, Role.ADMIN, ada.email, ada.name),
        nina=nina_actor,
        ben=Actor(ben.id, acme.id, Role.CONTRACTOR, ben.email, ben.name, contractor_id=bluebird.id),
    )
    demo_einvoicing.seed(
        session,
        admin=Actor(ada.id, acme.id, Role.ADMIN, ada.email, ada.name),
        nina=nina_actor,
        bluebird_id=bluebird.id,
        globex_admin_id=ada.id,
        globex_id=globex.id,
        kestrel_id=kestrel.id,
    )
    return DEMO_LOGINS
