"""The payment controls' rules that the database enforces again (issue 18) say the same in SQL as in
backoffice.domain.approvals, their one source: ``may_approve_step()`` (sql/rules.sql) is ``may_approve`` over
every combination of its arguments; ``applicable_approval_policy()`` (sql/controls.sql), over the real rows of an
organization's policies written through the service, is ``applicable_policy`` over the live ones, for random
policy sets (archived ones and other currencies among them) and amounts around each minimum. Both functions are
the owner's (the guards call them as SECURITY DEFINER; the app role may not execute them), so they are asked as
the owner role."""

from __future__ import annotations

import itertools
import uuid

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kit.engagements import owner_query, sign_in
from sqlalchemy import text

from backoffice.domain import approvals as rules
from backoffice.services import approvals
from backoffice.services.approvals import PolicyInput, StepInput

ROLES = ["admin", "owner", "finance", "contractor", None]  # None: no membership in the organization
STEP_ROLES = ["admin", "owner", "finance", None]  # None: a step of named people
PERSON, OTHER = uuid.UUID(int=1), uuid.UUID(int=2)


def test_who_may_decide_a_step_is_the_same_in_sql_and_python(admin_engine):
    # Each step names its role, or people: nobody, someone else, or someone else and the person deciding.
    named = {"nobody": [], "someone else": [OTHER], "them": [OTHER, PERSON]}
    combos = list(itertools.product(ROLES, STEP_ROLES, named, [True, False]))
    with admin_engine.connect() as conn:
        got = conn.execute(
            text(
                "select r, sr, ids, u, may_approve_step(sr, cast(string_to_array(ids, ',') as uuid[]), r, u)"
                " from unnest(cast(:roles as text[]), cast(:step_roles as text[]), cast(:ids as text[]),"
                " cast(:users as uuid[])) with ordinality as t(r, sr, ids, u, n) order by n"
            ),
            {
                "roles": [c[0] for c in combos],
                "step_roles": [c[1] for c in combos],
                "ids": [",".join(str(i) for i in named[c[2]]) for c in combos],
                "users": [PERSON if c[3] else None for c in combos],
            },
        ).all()
    assert len(got) == len(combos) == 5 * 4 * 3 * 2
    allowed = set()
    for (role, step_role, who, present), (r, sr, ids, user, sql) in zip(combos, got, strict=True):
        assert (r, sr, ids, user) == (role, step_role, ",".join(map(str, named[who])), PERSON if present else None)
        python = rules.may_approve(step_role, named[who], role, PERSON if present else None)
        assert sql is python, (role, step_role, who, present)
        if sql:
            allowed.add((role, step_role, who))
    # And what that means, written out: a staff member, signed in, whose role the step names or whom it names.
    assert allowed == {
        ("admin", "admin", "nobody"),
        ("admin", "admin", "someone else"),
        ("admin", "admin", "them"),
        ("admin", "owner", "them"),
        ("admin", "finance", "them"),
        ("admin", None, "them"),
        ("owner", "owner", "nobody"),
        ("owner", "owner", "someone else"),
        ("owner", "owner", "them"),
        ("owner", "admin", "them"),
        ("owner", "finance", "them"),
        ("owner", None, "them"),
        ("finance", "finance", "nobody"),
        ("finance", "finance", "someone else"),
        ("finance", "finance", "them"),
        ("finance", "admin", "them"),
        ("finance", "owner", "them"),
        ("finance", None, "them"),
    }


# --- which policy applies -------------------------------------------------------------------------------------

CURRENCIES = ["USD", "EUR"]
PROBED = [*CURRENCIES, "GBP"]  # a currency no policy has
# Minimums from a few values (so that policies share amounts across currencies and with archived ones) or any.
MINIMUMS = st.one_of(st.sampled_from([1, 100, 100_000, 1_000_000]), st.integers(min_value=1, max_value=10**11))
SPECS = st.lists(st.tuples(st.sampled_from(CURRENCIES), MINIMUMS, st.booleans()), max_size=6)


def typed(minor: int) -> str:
    """An amount of minor units as an admin types it in a two-decimal currency: 1234567 -> "12345.67"."""
    return f"{minor // 100}.{minor % 100:02d}"


def probes(specs, extra: list[int]) -> list[int]:
    """Amounts around every minimum (one below, at, one above), the smallest, and a few drawn ones."""
    amounts = {1, *extra}
    for _, minimum, _ in specs:
        amounts |= {minimum - 1, minimum, minimum + 1}
    return sorted(a for a in amounts if a >= 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=SPECS, extra=st.lists(st.integers(min_value=1, max_value=2 * 10**11), max_size=3))
@example(specs=[], extra=[5])
@example(specs=[("USD", 100_000, False), ("USD", 1_000_000, True), ("EUR", 500_000, False)], extra=[])
@example(specs=[("USD", 100, True), ("USD", 100, False), ("USD", 100, True)], extra=[])
def test_the_policy_that_applies_is_the_same_in_sql_and_python_for_random_policies(
    act_as, admin_engine, world, specs, extra
):
    session, admin = sign_in(act_as, world.admin, world.org_a)
    # The organization starts each example with no live policy (earlier examples' stay, archived).
    for row in owner_query(
        admin_engine, "select id from approval_policies where org_id = :o and archived_at is null", o=world.org_a
    ):
        approvals.archive_policy(session, admin, row["id"])
    live: list[rules.Policy] = []
    # Those switched off first: the service refuses a policy at the amount of a live one in its currency.
    for n, (currency, minimum, archived) in sorted(enumerate(specs), key=lambda s: not s[1][2]):
        if not archived and any((p.currency, p.min_amount) == (currency, minimum) for p in live):
            continue
        policy = approvals.create_policy(
            session,
            admin,
            PolicyInput(f"Policy {n}", currency, typed(minimum), [StepInput(role="finance")]),
        )
        if archived:
            approvals.archive_policy(session, admin, policy.id)
        else:
            live.append(rules.Policy(policy.id, currency, minimum, (rules.Step("finance"),)))

    combos = list(itertools.product(PROBED, probes(specs, extra)))
    with admin_engine.connect() as conn:
        got = conn.execute(
            text(
                "select c, g, applicable_approval_policy(:o, c, g)"
                " from unnest(cast(:c as text[]), cast(:g as bigint[])) as t(c, g)"
            ),
            {"o": world.org_a, "c": [c for c, _ in combos], "g": [g for _, g in combos]},
        ).all()
    assert len(got) == len(combos)
    session, admin = sign_in(act_as, world.admin, world.org_a)
    for currency, gross, policy_id in got:
        expected = rules.applicable_policy(live, currency, gross)
        assert policy_id == (expected.id if expected else None), (currency, gross, specs)
        # The service asks the same of the rows it reads (what an approval starts under).
        found = approvals.policy_for(session, world.org_a, currency, gross)
        assert (found.id if found else None) == policy_id, (currency, gross, specs)
    session.rollback()


def test_the_policy_that_applies_written_out(act_as, admin_engine, world):
    session, admin = sign_in(act_as, world.admin, world.org_a)

    def policy(currency, minimum, name):
        return approvals.create_policy(session, admin, PolicyInput(name, currency, minimum, [StepInput(role="admin")]))

    small = policy("USD", "1,000.00", "Small")
    large = policy("USD", "5,000.00", "Large")
    approvals.archive_policy(session, admin, policy("USD", "10,000.00", "Switched off").id)
    euro = policy("EUR", "100.00", "Euro")
    asked = [
        ("USD", 99_999),
        ("USD", 100_000),
        ("USD", 499_999),
        ("USD", 500_000),
        ("USD", 2_000_000),
        ("EUR", 9_999),
        ("EUR", 10_000),
        ("EUR", 2_000_000),
        ("GBP", 2_000_000),
    ]
    with admin_engine.connect() as conn:
        got = [
            conn.execute(
                text("select applicable_approval_policy(:o, :c, :g)"), {"o": world.org_a, "c": c, "g": g}
            ).scalar_one()
            for c, g in asked
        ]
    assert got == [None, small.id, small.id, large.id, large.id, None, euro.id, euro.id, None]
    # Another organization's policies never apply to it.
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select applicable_approval_policy(:o, 'USD', 2000000)"), {"o": world.org_b}).scalar_one()
            is None
        )
