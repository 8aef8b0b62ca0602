"""Setting the app up: `demo`, `create-org`, `create-user` (as the owner role, before anyone can sign in)."""

from __future__ import annotations

import sys
import uuid

import click
from sqlalchemy import func, select

from backoffice.cli import admin_session, command_urls, main
from backoffice.db import unit_of_work

# --- set-up -------------------------------------------------------------------------------------------


@main.command("demo")
def demo_command() -> None:
    """Seed the demo organizations and users into an empty database."""
    from backoffice.services import demo

    engine, session = admin_session(command_urls())
    with session:
        if demo.has_data(session):
            click.echo("The database already has organizations; demo data is only seeded into an empty one.", err=True)
            sys.exit(1)
        logins = demo.seed(session)
    engine.dispose()
    click.echo(f"Demo data seeded. Password for every demo login: {demo.DEMO_PASSWORD}")
    for login in logins:
        click.echo(f"  {login.email:<24} {login.role:<11} {login.org}")


@main.command("create-org")
@click.argument("name")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
@click.option("--retainage", default="10", show_default=True, help="Default retainage in percent.")
@click.option("--terms", default=30, show_default=True, type=int, help="Payment terms in days.")
def create_org(name: str, currency: str, retainage: str, terms: int) -> None:
    """Create an organization; prints its id."""
    from backoffice.domain.percent import parse_percent_to_bps
    from backoffice.errors import ValidationError
    from backoffice.services import bootstrap

    try:
        bps = parse_percent_to_bps(retainage)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--retainage") from None
    engine, session = admin_session(command_urls())
    with session, unit_of_work(session):
        try:
            org = bootstrap.create_org(session, name, currency.upper(), bps, terms)
        except ValidationError as exc:
            raise click.UsageError("; ".join(exc.fields.values())) from None
    engine.dispose()
    click.echo(org.id)


@main.command("create-user")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--org", "org_ref", required=True, help="Organization id or exact name.")
@click.option(
    "--role", type=click.Choice(["admin", "owner", "finance", "contractor"]), default="admin", show_default=True
)
@click.option("--contractor", "contractor_ref", help="Contractor id (required for --role contractor).")
@click.option("--password", help="At least 10 characters. On a terminal it is asked for when not given.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input (scripts)."
)
def create_user(
    email: str,
    name: str,
    org_ref: str,
    role: str,
    contractor_ref: str | None,
    password: str | None,
    password_stdin: bool,
) -> None:
    """Create a user with a password and a role in an organization."""
    from backoffice.domain.roles import Role
    from backoffice.errors import ValidationError
    from backoffice.models import Organization
    from backoffice.services import bootstrap

    if password_stdin:
        if password is not None:
            raise click.UsageError("give the password once: --password or --password-stdin, not both")
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "there is no terminal to ask for the password: pipe it with --password-stdin "
                '(echo "$PASSWORD" | backoffice create-user ... --password-stdin) or give --password'
            )
        password = click.prompt("Password (at least 10 characters)", hide_input=True, confirmation_prompt=True)

    engine, session = admin_session(command_urls())
    with session, unit_of_work(session):
        try:
            org_filter = Organization.id == uuid.UUID(org_ref)
        except ValueError:
            org_filter = func.lower(Organization.name) == org_ref.lower()
        orgs = session.execute(select(Organization).where(org_filter)).scalars().all()
        if len(orgs) != 1:
            raise click.BadParameter(f"no single organization matches {org_ref!r}", param_hint="--org")
        if (role == "contractor") != bool(contractor_ref):
            raise click.BadParameter("give --contractor exactly when --role is contractor", param_hint="--contractor")
        try:
            contractor_id = uuid.UUID(contractor_ref) if contractor_ref else None
        except ValueError:
            raise click.BadParameter("not a contractor id (a uuid)", param_hint="--contractor") from None
        try:
            user = bootstrap.create_user(
                session,
                email=email,
                name=name,
                password=password,
                org_id=orgs[0].id,
                role=Role(role),
                contractor_id=contractor_id,
            )
        except ValidationError as exc:
            raise click.UsageError("; ".join(exc.fields.values())) from None
    engine.dispose()
    click.echo(f"{user.email} is {role} of {orgs[0].name}. (An existing account keeps its own password.)")
