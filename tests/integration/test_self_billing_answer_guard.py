"""The database's guard on the contractor's answers (sql/self_billing.sql, invoice_acceptances_guard; issue 21): it
refuses exactly what domain.self_billing.answer_problem refuses, for every state an invoice's answer can be in and
either decision, on real invoices; a void invoice takes no answer, whatever was answered before; and an answer the
policies refuse (another organization's invoice, another contractor's name) learns nothing of the invoice it names,
nor locks it. Answers written straight as the web role, as a service that skipped its checks would."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from kit.engagements import owner_query, sign_in
from kit.money import active_engagement, approve, approved_invoices, party
from kit.self_billing import answer, answers, file_self_billed, issued_invoices
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.domain.self_billing import Acceptance, answer_problem
from backoffice.errors import Conflict
from backoffice.queries import self_billing as queries
from backoffice.services import approvals
from backoffice.services.approvals import PolicyInput, StepInput

REASON = "The retainage is 5% in our contract, not 10%."

_ANSWER = text(
    "insert into invoice_acceptances (org_id, invoice_id, contractor_id, decision, reason, decided_by)"
    " values (:org, :invoice, :contractor, :decision, :reason, :me)"
)


def raw_answer(session, org_id, invoice_id, contractor_id, me, decision="rejected"):
    reason = REASON if decision == "rejected" else None  # the table's CHECK: a reason with a rejection only
    session.execute(
        _ANSWER,
        {
            "org": org_id,
            "invoice": invoice_id,
            "contractor": contractor_id,
            "decision": decision,
            "reason": reason,
            "me": me,
        },
    )


def voided_after_rejection(act_as, admin_engine, world) -> dict:
    """Contractor X's invoice awaiting a finance approval step, its self-billed invoice issued and rejected by the
    contractor, and then the step rejected: the invoice is void."""
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(session, actor, PolicyInput("Large", "USD", "1,000.00", [StepInput(role="finance")]))
    p = party(world)
    _, (milestone,) = active_engagement(act_as, admin_engine, p, ("1,234.55",))
    invoice = approve(act_as, admin_engine, p, milestone)
    file_self_billed(admin_engine, invoice["id"])
    answer(act_as, world.contractor_x_user, world.org_a, invoice["id"], "rejected", REASON)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    approvals.decide_step(session, actor, invoice["id"], "reject", "Not this month.")
    assert (
        owner_query(admin_engine, "select status from invoices where id = :i", i=invoice["id"])[0]["status"] == "void"
    )
    return invoice


def test_a_void_invoice_takes_no_answer_even_after_a_rejection(act_as, admin_engine, world):
    invoice = voided_after_rejection(act_as, admin_engine, world)
    for person in (world.contractor_x_user, world.owner):
        session, _ = sign_in(act_as, person, world.org_a)
        view = queries.acceptance_of(session, invoice["id"])
        assert (view.state, view.answerable) == (Acceptance.VOID, False)
    with pytest.raises(Conflict, match=r"^This authorization is void: there is nothing to answer\.$"):
        answer(act_as, world.contractor_x_user, world.org_a, invoice["id"], "accepted")
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    with pytest.raises(DBAPIError, match="this self-billed invoice is void: there is nothing to answer"):
        raw_answer(session, world.org_a, invoice["id"], world.contractor_x, world.contractor_x_user.id, "accepted")
    session.rollback()
    assert [a["decision"] for a in answers(admin_engine, invoice["id"])] == ["rejected"]


# What the guard refuses, written out: every state an invoice's answer can be in, and either decision (with a reason;
# a rejection's missing reason is the table's CHECK).
REFUSED = {
    ("not_issued", "accepted"): True,
    ("not_issued", "rejected"): True,
    ("awaiting", "accepted"): False,
    ("awaiting", "rejected"): False,
    ("accepted", "accepted"): True,
    ("accepted", "rejected"): True,
    ("accepted_by_silence", "accepted"): True,
    ("accepted_by_silence", "rejected"): True,
    ("rejected", "accepted"): False,  # the two sides sorted it out
    ("rejected", "rejected"): True,
    ("void", "accepted"): True,
    ("void", "rejected"): True,
}


def test_the_guard_refuses_exactly_what_the_domain_refuses_for_every_state_and_decision(act_as, admin_engine, world):
    assert {s for s, _ in REFUSED} == {a.value for a in Acceptance}
    assert {(s, d): answer_problem(Acceptance(s), d, REASON) is not None for s, d in REFUSED} == REFUSED

    by_state = {"void": voided_after_rejection(act_as, admin_engine, world)["id"]}
    _, (unissued,) = approved_invoices(act_as, admin_engine, party(world), ("100.00",))
    awaiting, accepted, rejected = issued_invoices(act_as, admin_engine, world, ("200.00", "300.00", "400.00"))
    (silent,) = issued_invoices(act_as, admin_engine, world, ("500.00",), ago=timedelta(days=15))
    answer(act_as, world.contractor_x_user, world.org_a, accepted["id"], "accepted")
    answer(act_as, world.contractor_x_user, world.org_a, rejected["id"], "rejected", REASON)
    by_state |= {
        "not_issued": unissued["id"],
        "awaiting": awaiting["id"],
        "accepted": accepted["id"],
        "accepted_by_silence": silent["id"],
        "rejected": rejected["id"],
    }
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    seen = {
        r.invoice_id: r.state
        for r in session.execute(
            text("select invoice_id, state from invoice_acceptances_seen(cast(:ids as uuid[]))"),
            {"ids": list(by_state.values())},
        )
    }
    assert {state: seen[i] for state, i in by_state.items()} == {state: state for state in by_state}

    refused = {}
    for state, decision in REFUSED:
        attempt = session.begin_nested()
        try:
            raw_answer(session, world.org_a, by_state[state], world.contractor_x, world.contractor_x_user.id, decision)
            refused[state, decision] = False
        except DBAPIError as exc:
            assert exc.orig.diag.constraint_name is None, exc  # the guard's refusal, not a CHECK's
            assert exc.orig.sqlstate == "23514", exc
            refused[state, decision] = True
        finally:
            attempt.rollback()
    session.rollback()
    assert refused == REFUSED


# --- what a refused answer learns ------------------------------------------------------------------------------------


def test_an_answer_for_another_organizations_invoice_learns_nothing_of_it(act_as, admin_engine, world):
    accepted, rejected, awaiting = issued_invoices(act_as, admin_engine, world, ("100.00", "200.00", "300.00"))
    answer(act_as, world.contractor_x_user, world.org_a, accepted["id"], "accepted")
    answer(act_as, world.contractor_x_user, world.org_a, rejected["id"], "rejected", REASON)
    session, _ = sign_in(act_as, world.contractor_z_user, world.org_b)
    tries = [(i["id"], world.contractor_x) for i in (accepted, rejected, awaiting)]
    tries += [(accepted["id"], None), (uuid.uuid4(), None)]  # an invoice that exists, and one that does not
    said = []
    for invoice_id, contractor_id in tries:
        with pytest.raises(DBAPIError) as refused:
            raw_answer(session, world.org_a, invoice_id, contractor_id, world.contractor_z_user.id)
        said.append(str(refused.value.orig).splitlines()[0])
        session.rollback()
    assert said == ['new row violates row-level security policy for table "invoice_acceptances"'] * len(tries)
    assert len(answers(admin_engine, rejected["id"])) == 1 and answers(admin_engine, awaiting["id"]) == []


def test_an_answer_in_another_contractors_name_learns_nothing_of_its_invoices(act_as, admin_engine, world):
    accepted, rejected, awaiting = issued_invoices(
        act_as, admin_engine, world, ("100.00", "200.00", "300.00"), which="y"
    )
    answer(act_as, world.contractor_y_user, world.org_a, accepted["id"], "accepted")
    answer(act_as, world.contractor_y_user, world.org_a, rejected["id"], "rejected", REASON)
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    said = []
    for invoice in (accepted, rejected, awaiting):
        for contractor_id in (world.contractor_y, world.contractor_x):  # Y's name: the policy; its own: the guard
            with pytest.raises(DBAPIError) as refused:
                raw_answer(session, world.org_a, invoice["id"], contractor_id, world.contractor_x_user.id)
            said.append(str(refused.value.orig).splitlines()[0])
            session.rollback()
    policy = 'new row violates row-level security policy "answered_by_its_contractor" for table "invoice_acceptances"'
    assert said == [policy, "an answer to a self-billed invoice is its contractor's"] * 3  # whatever its state


@pytest.mark.parametrize("who", ["another organization's contractor", "another contractor"])
def test_a_refused_answer_neither_locks_nor_waits_for_the_invoice(act_as, admin_engine, world, who):
    """The guard locks the invoice it answers (two answers queue); one the policies refuse touches no lock: it neither
    waits on the invoice (while an export or a payment holds it here) nor holds up anything of it."""
    (invoice,) = issued_invoices(act_as, admin_engine, world)
    person, org_id, contractor_id, words = (
        (world.contractor_z_user, world.org_b, world.contractor_x, "row-level security")
        if who == "another organization's contractor"
        else (world.contractor_y_user, world.org_a, world.contractor_y, "its contractor's")
    )
    session, _ = sign_in(act_as, person, org_id)
    session.execute(text("set local lock_timeout = '1s'"))
    with admin_engine.connect() as holder, holder.begin():
        holder.execute(text("select 1 from invoices where id = :i for update"), {"i": invoice["id"]})
        with pytest.raises(DBAPIError) as refused:
            raw_answer(session, world.org_a, invoice["id"], contractor_id, person.id)
        session.rollback()
    assert words in str(refused.value.orig)  # refused at once, not after waiting for the lock (lock_timeout)
