"""Row-level security of the Stripe rail's tables (issue 17), with raw SQL as the web role and the worker role:
a contractor's user sees its own payout account and attempts only, staff their organization's, nobody another
organization's; only finance and admins ask for a payment, only the worker closes one, and nobody records a
Stripe payment by hand."""

from __future__ import annotations

import json

import pytest
from kit.engagements import owner_query, sign_in
from kit.money import approved_invoices, party, set_org
from kit.signin import act
from kit.stripe import ready_account, running_fake
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.errors import Conflict
from backoffice.services import stripe_payouts
from backoffice.services.notifications import worker_actor


@pytest.fixture
def rail(app):
    with running_fake() as fake:
        yield fake


@pytest.fixture
def paying(world, act_as, admin_engine, rail):
    """Org A pays X and Y by Stripe: each has a ready account and one invoice sent (attempt pending). Org B's
    contractor Z likewise. Returns {contractor: attempt id}."""
    out = {}
    for who in ("x", "y", "z"):
        p = party(world, who)
        ready_account(act_as, admin_engine, world, rail, who)
        _, (invoice, _) = approved_invoices(act_as, admin_engine, p)
        payer = world.finance if who != "z" else world.admin_b
        session, actor = sign_in(act_as, payer, p.org_id)
        if who == "z":  # org B's admin approved its work: segregation of duties off there for the test
            set_org(admin_engine, p.org_id, segregation_of_duties=False)
        stripe_payouts.send(session, actor, [invoice["id"]], configured=True)
        (row,) = owner_query(admin_engine, "select id from payout_attempts where invoice_id = :i", i=invoice["id"])
        out[who] = row["id"]
    act_as(None, None)
    return out


def seen(app_session, person, org_id, table: str) -> set:
    act(app_session, user_id=person.id, org_id=org_id)
    rows = set(app_session.execute(text(f"select id from {table}")).scalars())
    app_session.rollback()
    return rows


def test_each_contractor_sees_its_own_attempts_and_account_staff_their_orgs(world, app_session, admin_engine, paying):
    accounts = {
        r["contractor_id"]: r["id"] for r in owner_query(admin_engine, "select id, contractor_id from payout_accounts")
    }
    assert seen(app_session, world.contractor_x_user, world.org_a, "payout_attempts") == {paying["x"]}
    assert seen(app_session, world.contractor_y_user, world.org_a, "payout_attempts") == {paying["y"]}
    assert seen(app_session, world.contractor_x_user, world.org_a, "payout_accounts") == {accounts[world.contractor_x]}
    assert seen(app_session, world.finance, world.org_a, "payout_attempts") == {paying["x"], paying["y"]}
    assert seen(app_session, world.owner, world.org_a, "payout_attempts") == {paying["x"], paying["y"]}
    assert seen(app_session, world.admin_b, world.org_b, "payout_attempts") == {paying["z"]}
    # A person of org A naming org B sees nothing of it.
    assert seen(app_session, world.finance, world.org_b, "payout_attempts") == set()


def refused(app_session, person, org_id, sql: str, words: str, **params) -> None:
    act(app_session, user_id=person.id, org_id=org_id)
    with pytest.raises(DBAPIError) as raised:
        app_session.execute(text(sql), params)
        app_session.flush()
    app_session.rollback()
    assert words in str(raised.value.orig), str(raised.value.orig)


def test_the_web_role_cannot_close_an_attempt_or_record_a_stripe_payment_by_hand(
    world, app_session, admin_engine, paying
):
    for person in (world.finance, world.admin):
        refused(
            app_session,
            person,
            world.org_a,
            "update payout_attempts set status = 'refused', failure_words = 'x', finished_at = now() where id = :a",
            "permission denied",
            a=paying["x"],
        )
    (attempt,) = owner_query(admin_engine, "select * from payout_attempts where id = :a", a=paying["x"])
    refused(
        app_session,
        world.finance,
        world.org_a,
        "insert into payments (org_id, contractor_id, invoice_id, amount_minor, currency, paid_at, reference, method,"
        " source, recorded_by) values (:o, :c, :i, :n, 'USD', current_date, 'tr_forged', 'stripe', 'stripe', :u)",
        "never by hand",
        o=world.org_a,
        c=world.contractor_x,
        i=attempt["invoice_id"],
        n=attempt["amount_minor"],
        u=world.finance.id,
    )


def test_a_contractor_cannot_ask_for_its_own_payment(world, app_session, admin_engine, act_as, rail, paying):
    _, (invoice, _) = approved_invoices(act_as, admin_engine, party(world))
    act_as(None, None)
    (account,) = owner_query(
        admin_engine, "select external_id from payout_accounts where contractor_id = :c", c=world.contractor_x
    )
    refused(
        app_session,
        world.contractor_x_user,
        world.org_a,
        "insert into payout_attempts (org_id, run_id, invoice_id, contractor_id, rail, destination, amount_minor,"
        " currency, requested_by) values (:o, gen_random_uuid(), :i, :c, 'stripe', :d, :n, 'USD', :u)",
        "a payment is sent by finance or an admin",
        o=world.org_a,
        i=invoice["id"],
        c=world.contractor_x,
        d=account["external_id"],
        n=invoice["net_minor"],
        u=world.contractor_x_user.id,
    )


def test_the_worker_sees_and_closes_only_its_organizations_attempts(world, as_worker, paying):
    session = as_worker(world.org_b)
    assert set(session.execute(text("select id from payout_attempts")).scalars()) == {paying["z"]}
    updated = session.execute(
        text("update payout_attempts set tries = tries + 1 where id = :a"), {"a": paying["x"]}
    ).rowcount
    session.rollback()
    assert updated == 0  # org A's attempt is not there for org B's worker
    session = as_worker(world.org_a)
    assert set(session.execute(text("select id from payout_attempts")).scalars()) == {paying["x"], paying["y"]}
    session.rollback()


@pytest.mark.parametrize(
    "task, args",
    [
        ("pay_out", "attempt_id"),
        ("reconcile_stripe", None),
        ("pay_on_approval", "invoice_id"),
    ],
)
def test_a_contractor_cannot_queue_the_payment_rails_jobs(world, app_session, task, args):
    job = {"org_id": str(world.org_a)} | ({args: "00000000-0000-0000-0000-000000000001"} if args else {})
    refused(
        app_session,
        world.contractor_x_user,
        world.org_a,
        "select enqueue_job(:task, cast(:args as jsonb))",
        "is queued by the people who pay",
        task=task,
        args=json.dumps(job),
    )


def test_an_attempt_that_does_not_hand_its_invoice_to_the_rail_is_refused_at_commit(
    world, app_session, admin_engine, act_as, rail, paying
):
    """Finance's own SQL asking Stripe to pay an invoice it leaves authorized (to pay it by hand as well)."""
    _, (invoice, _) = approved_invoices(act_as, admin_engine, party(world))
    act_as(None, None)
    (account,) = owner_query(
        admin_engine, "select external_id from payout_accounts where contractor_id = :c", c=world.contractor_x
    )
    act(app_session, user_id=world.finance.id, org_id=world.org_a)
    app_session.execute(
        text(
            "insert into payout_attempts (org_id, run_id, invoice_id, contractor_id, rail, destination, amount_minor,"
            " currency, requested_by) values (:o, gen_random_uuid(), :i, :c, 'stripe', :d, :n, 'USD', :u)"
        ),
        {
            "o": world.org_a,
            "i": invoice["id"],
            "c": world.contractor_x,
            "d": account["external_id"],
            "n": invoice["net_minor"],
            "u": world.finance.id,
        },
    )
    with pytest.raises(DBAPIError, match="hands its invoice to the rail in the same transaction"):
        app_session.commit()
    app_session.rollback()
    assert owner_query(admin_engine, "select id from payout_attempts where invoice_id = :i", i=invoice["id"]) == []


def test_automatic_payment_goes_out_only_in_the_name_of_an_admin_who_turned_it_on(
    world, app_session, admin_engine, as_worker, act_as, rail, paying
):
    # Another admin cannot turn it on in Ada's name.
    refused(
        app_session,
        world.admin,
        world.org_a,
        "update organizations set auto_pay_enabled = true, auto_pay_by = :other where id = :o",
        "turned on by an admin in their own name",
        other=world.owner.id,
        o=world.org_a,
    )
    # Turned on by Ada, then Ada is no longer an admin: the worker sends nothing in her name.

    set_org(admin_engine, world.org_a, auto_pay_enabled=True, auto_pay_by=world.admin.id)
    with admin_engine.begin() as conn:
        conn.execute(
            text("update memberships set role = 'finance' where org_id = :o and user_id = :u"),
            {"o": world.org_a, "u": world.admin.id},
        )
    _, (invoice,) = approved_invoices(act_as, admin_engine, party(world), ("1,000.00",), terms="0")
    act_as(None, None)
    with pytest.raises(Conflict, match="not in the name of the admin who turned it on"):
        stripe_payouts.send(
            as_worker(world.org_a), worker_actor(world.org_a), [invoice["id"]], configured=True, automatic=True
        )
    assert owner_query(admin_engine, "select id from payout_attempts where invoice_id = :i", i=invoice["id"]) == []
