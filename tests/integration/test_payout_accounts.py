"""A contractor connects a payout account on the Stripe rail (issue 17, item 2), through the real Stripe SDK
against the local fake (backoffice.dev.stripe_fake): who may, what Stripe is asked, what is kept, and how
ready the account is said to be. RLS by raw SQL as the app role."""

from __future__ import annotations

import pytest
from kit.engagements import owner_query, race, sign_in
from kit.money import set_org
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.config import Settings
from backoffice.dev.stripe_fake import StripeFake
from backoffice.domain.payouts import Readiness
from backoffice.errors import Conflict, Forbidden, NotFound
from backoffice.services import payout_accounts
from backoffice.services.stripe_rail import NOT_CONFIGURED, client_for

RETURN, REFRESH = "http://127.0.0.1:5000/payouts/x/return", "http://127.0.0.1:5000/payouts/x/again"


@pytest.fixture
def fake():
    with StripeFake(auto_deliver=False) as running:
        yield running


@pytest.fixture
def rail(fake):
    return fake.client(max_network_retries=0)


@pytest.fixture
def rail_on(world, admin_engine):
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)


def connect(act_as, person, org_id, contractor_id, rail):
    session, actor = sign_in(act_as, person, org_id)
    return payout_accounts.start_onboarding(
        session, actor, contractor_id, rail=rail, return_url=RETURN, refresh_url=REFRESH
    )


def stored(admin_engine, contractor_id) -> list[dict]:
    return owner_query(admin_engine, "select * from payout_accounts where contractor_id = :c", c=contractor_id)


def test_a_contractor_connects_its_own_account_and_comes_back_ready(world, act_as, admin_engine, fake, rail, rail_on):
    url = connect(act_as, world.contractor_x_user, world.org_a, world.contractor_x, rail)
    assert url.startswith(fake.url + "/connect/onboarding/")
    (account,) = fake.accounts()
    assert (account["type"] == "express" and account["email"] == "x@contractor.example") or account["email"]
    assert account["metadata"] == {"org_id": str(world.org_a), "contractor_id": str(world.contractor_x)}
    assert account["capabilities"]["transfers"] in ("inactive", "pending")
    (row,) = stored(admin_engine, world.contractor_x)
    assert (row["external_id"], row["rail"], row["connected_by"]) == (
        account["id"],
        "stripe",
        world.contractor_x_user.id,
    )
    assert payout_accounts.readiness_of(_account(act_as, world, world.contractor_x)) is Readiness.NEEDS_DETAILS

    fake.make_ready(account["id"])
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    state = payout_accounts.refresh_readiness(session, actor, world.contractor_x, rail=rail)
    assert state.readiness is Readiness.READY
    (row,) = stored(admin_engine, world.contractor_x)
    assert (row["transfers_active"], row["payouts_enabled"], row["currently_due"]) == (True, True, [])
    actions = [
        r["action"]
        for r in owner_query(
            admin_engine, "select action from audit_events where org_id = :o order by seq", o=world.org_a
        )
    ]
    assert actions[-2:] == ["payout_account.connected", "payout_account.updated"]


def _account(act_as, world, contractor_id):
    session, _ = sign_in(act_as, world.admin, world.org_a)
    return payout_accounts.payout_account(session, contractor_id)


def test_connecting_again_reuses_the_account_with_a_new_link(world, act_as, admin_engine, fake, rail, rail_on):
    first = connect(act_as, world.contractor_x_user, world.org_a, world.contractor_x, rail)
    second = connect(act_as, world.admin, world.org_a, world.contractor_x, rail)
    assert first != second
    assert len(fake.accounts()) == 1 and len(stored(admin_engine, world.contractor_x)) == 1


def test_two_clicks_at_once_make_one_account_and_one_row(world, app_sessions, admin_engine, fake, rail, rail_on):
    def click(session, actor, i):
        return payout_accounts.start_onboarding(
            session, actor, world.contractor_x, rail=rail, return_url=RETURN, refresh_url=REFRESH
        )

    outcomes = race(app_sessions, world.org_a, [world.contractor_x_user, world.admin] * 3, click)
    assert all(isinstance(o, str) for o in outcomes), outcomes
    assert len(fake.accounts()) == 1 and len(stored(admin_engine, world.contractor_x)) == 1
    connected = owner_query(
        admin_engine,
        "select count(*) as n from audit_events where org_id = :o and action = 'payout_account.connected'",
        o=world.org_a,
    )
    assert connected == [{"n": 1}]


@pytest.mark.parametrize("who, error", [("owner", Forbidden), ("finance", Forbidden), ("contractor_y_user", NotFound)])
def test_only_the_contractors_own_user_or_an_admin_connects_it(
    world, act_as, admin_engine, fake, rail, rail_on, who, error
):
    with pytest.raises(error):
        connect(act_as, getattr(world, who), world.org_a, world.contractor_x, rail)
    assert fake.accounts() == [] and stored(admin_engine, world.contractor_x) == []


def test_with_the_rail_turned_off_nothing_is_asked_of_stripe(world, act_as, admin_engine, fake, rail):
    with pytest.raises(Conflict) as refused:
        connect(act_as, world.contractor_x_user, world.org_a, world.contractor_x, rail)
    assert "turned off" in str(refused.value)
    assert fake.accounts() == [] and stored(admin_engine, world.contractor_x) == []


def test_without_keys_the_rail_says_what_to_set(tmp_path):
    with pytest.raises(Conflict) as refused:
        client_for(
            Settings(data_dir=tmp_path, database_url=None, database_admin_url=None, secret_key=None, trust_proxy=False)
        )
    assert str(refused.value) == NOT_CONFIGURED and "STRIPE_SECRET_KEY" in NOT_CONFIGURED


def test_a_refusal_from_stripe_is_a_conflict_with_its_words(world, act_as, admin_engine, fake, rail, rail_on):
    fake.fail_next("/v1/accounts", "500")
    with pytest.raises(Conflict) as refused:
        connect(act_as, world.contractor_x_user, world.org_a, world.contractor_x, rail)
    assert str(refused.value).startswith("Stripe could not start the onboarding:")
    assert stored(admin_engine, world.contractor_x) == []


# --- RLS, by raw SQL as the app role --------------------------------------------------------------------------


def test_a_contractor_reads_only_its_own_payout_account(world, act_as, admin_engine, fake, rail, rail_on):
    connect(act_as, world.contractor_x_user, world.org_a, world.contractor_x, rail)
    connect(act_as, world.contractor_y_user, world.org_a, world.contractor_y, rail)
    for person, seen in (
        (world.contractor_x_user, {world.contractor_x}),
        (world.contractor_y_user, {world.contractor_y}),
        (world.owner, {world.contractor_x, world.contractor_y}),
    ):
        session = act_as(person.id, world.org_a)
        assert set(session.execute(text("select contractor_id from payout_accounts")).scalars()) == seen
        session.rollback()
    other_org = act_as(world.admin_b.id, world.org_b)
    assert other_org.execute(text("select count(*) from payout_accounts")).scalar_one() == 0
    other_org.rollback()


@pytest.mark.parametrize(
    "who, contractor",
    [("owner", "contractor_x"), ("finance", "contractor_x"), ("contractor_y_user", "contractor_x")],
)
def test_nobody_else_inserts_a_payout_account(world, act_as, who, contractor):
    person = getattr(world, who)
    session = act_as(person.id, world.org_a)
    with pytest.raises(DBAPIError) as refused:
        session.execute(
            text(
                "insert into payout_accounts (org_id, contractor_id, rail, external_id, connected_by)"
                " values (:o, :c, 'stripe', 'acct_planted', :u)"
            ),
            {"o": world.org_a, "c": getattr(world, contractor), "u": person.id},
        )
    session.rollback()
    assert refused.value.orig.sqlstate == "42501"


def test_a_payout_account_is_never_deleted_nor_its_account_changed_by_the_web(
    world, act_as, admin_engine, fake, rail, rail_on
):
    connect(act_as, world.contractor_x_user, world.org_a, world.contractor_x, rail)
    for sql in ("delete from payout_accounts", "update payout_accounts set external_id = 'acct_other'"):
        session = act_as(world.admin.id, world.org_a)
        with pytest.raises(DBAPIError) as refused:
            session.execute(text(sql))
        session.rollback()
        assert refused.value.orig.sqlstate == "42501", sql


def test_the_same_contractor_named_another_way_is_still_one_account(world, act_as, admin_engine, fake, rail, rail_on):
    connect(act_as, world.contractor_x_user, world.org_a, str(world.contractor_x).upper(), rail)
    connect(act_as, world.contractor_x_user, world.org_a, world.contractor_x, rail)
    (account,) = fake.accounts()
    assert account["metadata"]["contractor_id"] == str(world.contractor_x)
    assert len(stored(admin_engine, world.contractor_x)) == 1
