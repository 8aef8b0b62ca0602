"""The contractor's answer to each self-billed invoice (issue 21, item 4; EU VAT Directive 2006/112/EC art. 224): its
user accepts or rejects (with a reason) each one, silence for the organization's days counts as acceptance, an
organization that requires acceptance pays nothing not accepted (a rejected invoice nobody pays), and a rejection goes
back to the engagement's owner and finance with the reason. Through the real services, with the database's guards tried
directly as the web role where a service could be skipped; rows read back as the owner role. The agreement itself:
test_self_billing_agreement.py."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from kit.engagements import owner_query, race, sign_in
from kit.jobs import BASE_URL, run_jobs
from kit.money import approved_invoices, events, export, money_state, party, pay, set_org
from kit.self_billing import (
    answer,
    answers,
    emails,
    issued_invoices,
)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.domain.self_billing import Acceptance
from backoffice.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.queries import self_billing as queries
from backoffice.services import receipts, self_billing
from backoffice.services.notifications import worker_actor

REJECTION = "The retainage is 5% in our contract, not 10%."

# --- the answer to each self-billed invoice --------------------------------------------------------------------------


def state_of(act_as, person, org_id, invoice_id) -> Acceptance | None:
    session, _ = sign_in(act_as, person, org_id)
    view = queries.acceptance_of(session, invoice_id)
    return view.state if view else None


def test_the_contractor_accepts_a_self_billed_invoice_issued_by_the_worker(act_as, as_worker, admin_engine, world):
    _, (inv,) = approved_invoices(act_as, admin_engine, party(world), ("1,000.00",))
    assert state_of(act_as, world.contractor_x_user, world.org_a, inv["id"]) is Acceptance.NOT_ISSUED
    with pytest.raises(Conflict, match="not been issued yet"):
        answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "accepted")
    receipts.issue_receipt(as_worker(world.org_a), worker_actor(world.org_a), inv["id"])
    assert state_of(act_as, world.contractor_x_user, world.org_a, inv["id"]) is Acceptance.AWAITING

    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "accepted", reason="ignored")
    (row,) = answers(admin_engine, inv["id"])
    assert (row["decision"], row["reason"], row["decided_by"], row["contractor_id"]) == (
        "accepted",
        None,
        world.contractor_x_user.id,
        world.contractor_x,
    )
    for person in (world.contractor_x_user, world.owner, world.finance, world.admin):
        assert state_of(act_as, person, world.org_a, inv["id"]) is Acceptance.ACCEPTED
    (event,) = events(admin_engine, world.org_a, "self_billing.invoice_accepted")
    assert (event["entity_id"], event["data"]["invoice_number"]) == (str(inv["id"]), inv["invoice_number"])


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("", "Say why you reject it"),
        ("  \n ", "Say why you reject it"),
        ("Wrong\x00 amount", "characters that are not allowed"),
        ("x" * 1001, "under 1000 characters"),
    ],
)
def test_a_rejection_without_a_proper_reason_is_refused_at_the_reason_and_nothing_is_saved(
    act_as, admin_engine, world, reason, words
):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    with pytest.raises(ValidationError) as refused:
        answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", reason)
    assert list(refused.value.fields) == ["reason"] and words in refused.value.fields["reason"]
    assert answers(admin_engine, inv["id"]) == []


def test_an_unknown_decision_is_refused(act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    with pytest.raises(ValidationError) as refused:
        answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "maybe")
    assert list(refused.value.fields) == ["decision"]


def test_a_rejected_invoice_may_be_accepted_later_but_an_accepted_one_is_never_rejected(act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", f"  {REJECTION} ")
    assert state_of(act_as, world.owner, world.org_a, inv["id"]) is Acceptance.REJECTED
    with pytest.raises(Conflict, match="rejected this self-billed invoice already"):
        answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", "Still wrong.")
    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "accepted")
    with pytest.raises(Conflict, match="accepted already"):
        answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", "Changed my mind.")
    with pytest.raises(Conflict, match="accepted already"):
        answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "accepted")
    assert [(a["decision"], a["reason"]) for a in answers(admin_engine, inv["id"])] == [
        ("rejected", REJECTION),
        ("accepted", None),
    ]
    session, _ = sign_in(act_as, world.owner, world.org_a)
    view = queries.acceptance_of(session, inv["id"])
    assert (view.state, view.answer.decision, view.answer.decided_by_name) == (
        Acceptance.ACCEPTED,
        "accepted",
        "Xena X",
    )


def test_the_database_refuses_a_second_rejection_and_a_rejection_after_acceptance(act_as, admin_engine, world):
    first, second = issued_invoices(act_as, admin_engine, world, ("100.00", "200.00"))
    answer(act_as, world.contractor_x_user, world.org_a, first["id"], "rejected", REJECTION)
    answer(act_as, world.contractor_x_user, world.org_a, second["id"], "accepted")
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    for invoice, words in ((first, "rejected already"), (second, "accepted already")):
        with pytest.raises(DBAPIError, match=words):
            raw_answer(session, world, invoice["id"], world.contractor_x, "rejected", "Again.")
        session.rollback()
    assert len(answers(admin_engine, first["id"])) == len(answers(admin_engine, second["id"])) == 1


def raw_answer(session, world, invoice_id, contractor_id, decision, reason=None):
    """An answer written straight as the web role, as a service that skipped its checks would."""
    session.execute(
        text(
            "insert into invoice_acceptances (org_id, invoice_id, contractor_id, decision, reason, decided_by)"
            " values (:o, :i, :c, :d, :r, :me)"
        ),
        {
            "o": world.org_a,
            "i": invoice_id,
            "c": contractor_id,
            "d": decision,
            "r": reason,
            "me": world.contractor_x_user.id,
        },
    )


def test_a_contractor_cannot_answer_another_contractors_invoice(act_as, admin_engine, world):
    (theirs,) = issued_invoices(act_as, admin_engine, world, which="y")
    with pytest.raises(NotFound):
        answer(act_as, world.contractor_x_user, world.org_a, theirs["id"], "rejected", REJECTION)
    assert state_of(act_as, world.contractor_x_user, world.org_a, theirs["id"]) is None  # not even its state
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    with pytest.raises(DBAPIError, match="row-level security"):  # in Y's name: the policy
        raw_answer(session, world, theirs["id"], world.contractor_y, "accepted")
    session.rollback()
    with pytest.raises(DBAPIError, match="its contractor's"):  # in its own name, on Y's invoice: the guard
        raw_answer(session, world, theirs["id"], world.contractor_x, "accepted")
    session.rollback()
    assert answers(admin_engine, theirs["id"]) == []


@pytest.mark.parametrize(("decision", "words"), [("accepted", "accepted"), ("rejected", "rejected")])
def test_two_answers_at_once_keep_one_and_refuse_the_other_in_words(
    app_sessions, admin_engine, world, act_as, decision, words
):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    outcomes = race(
        app_sessions,
        world.org_a,
        [world.contractor_x_user] * 2,
        lambda session, actor, i: self_billing.answer_invoice(session, actor, inv["id"], decision, REJECTION),
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    # The second sees the first's answer (the service's words), or the guard does, having waited on its lock.
    assert len(refused) == 1 and isinstance(refused[0], Conflict), outcomes
    assert re.search(rf"{words} (this self-billed invoice )?already", refused[0].message), refused[0].message
    assert [a["decision"] for a in answers(admin_engine, inv["id"])] == [decision]


@pytest.mark.parametrize("who", ["owner", "finance", "admin"])
def test_staff_do_not_answer_for_the_contractor(act_as, admin_engine, world, who):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    with pytest.raises(Forbidden):
        answer(act_as, getattr(world, who), world.org_a, inv["id"], "accepted")
    assert answers(admin_engine, inv["id"]) == []


# --- silence ---------------------------------------------------------------------------------------------------------


def test_silence_past_the_organizations_days_is_acceptance_and_a_rejection_is_refused(act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world, ago=timedelta(days=14, seconds=5))
    session, _ = sign_in(act_as, world.owner, world.org_a)
    view = queries.acceptance_of(session, inv["id"])
    assert (view.state, view.acceptance_days, view.answer) == (Acceptance.ACCEPTED_BY_SILENCE, 14, None)
    assert view.silence_ends == view.issued_at + timedelta(days=14)
    with pytest.raises(Conflict, match=r"accepted already \(silence counted as acceptance\)"):
        answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", REJECTION)
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    with pytest.raises(DBAPIError, match="accepted already"):
        raw_answer(session, world, inv["id"], world.contractor_x, "rejected", REJECTION)
    session.rollback()
    assert answers(admin_engine, inv["id"]) == []


def test_silence_counts_the_organizations_own_days(act_as, admin_engine, world):
    set_org(admin_engine, world.org_a, acceptance_days=30)
    (inv,) = issued_invoices(act_as, admin_engine, world, ago=timedelta(days=20))
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    view = queries.acceptance_of(session, inv["id"])
    assert (view.state, view.acceptance_days) == (Acceptance.AWAITING, 30)
    assert queries.to_answer(session, world.contractor_x)[0].invoice_id == inv["id"]
    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", REJECTION)


def test_the_home_list_holds_only_what_awaits_an_answer(act_as, admin_engine, world):
    fresh, answered, silent = (
        issued_invoices(act_as, admin_engine, world, ("100.00",))[0],
        issued_invoices(act_as, admin_engine, world, ("200.00",))[0],
        issued_invoices(act_as, admin_engine, world, ("300.00",), ago=timedelta(days=15))[0],
    )
    _, (unissued,) = approved_invoices(act_as, admin_engine, party(world), ("400.00",))
    (other,) = issued_invoices(act_as, admin_engine, world, which="y")
    answer(act_as, world.contractor_x_user, world.org_a, answered["id"], "rejected", REJECTION)
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    assert [r.invoice_id for r in queries.to_answer(session, world.contractor_x)] == [fresh["id"]]
    assert {silent["id"], unissued["id"], other["id"]}.isdisjoint(
        r.invoice_id for r in queries.to_answer(session, world.contractor_x)
    )


# --- payment ---------------------------------------------------------------------------------------------------------


def status(admin_engine, invoice_id) -> str:
    return owner_query(admin_engine, "select status from invoices where id = :i", i=invoice_id)[0]["status"]


# What the payment doors say (queries/payability.ACCEPTANCE_WORDS), and what the database says when a door is skipped.
SAYS_NOT_ACCEPTED = "awaits the contractor's acceptance of its self-billed invoice"
SAYS_NOT_ISSUED = "self-billed invoice has not been issued yet, so the contractor has not accepted it"
SAYS_REJECTED = "contractor rejected its self-billed invoice"
DB_NOT_ACCEPTED = "cannot be exported or paid: the contractor has not accepted its self-billed invoice yet"
DB_REJECTED = "cannot be exported or paid: the contractor rejected its self-billed invoice"
# A door's refusal in words; never a raw database error (a page's 500), even where only the database refuses.
REFUSALS = (Conflict, InvalidTransition, ValidationError)


def refused_words(error: Exception) -> str:
    return " ".join([str(error), *getattr(error, "fields", {}).values()])


def assert_refused(words: str, call) -> None:
    with pytest.raises(REFUSALS) as refused:
        call()
    assert words.lower() in refused_words(refused.value).lower()


def test_where_acceptance_is_required_an_unaccepted_invoice_is_neither_paid_nor_exported(act_as, admin_engine, world):
    set_org(admin_engine, world.org_a, acceptance_required=True)
    (waiting,) = issued_invoices(act_as, admin_engine, world, ("100.00",))
    _, (unissued,) = approved_invoices(act_as, admin_engine, party(world), ("200.00",))
    before = money_state(admin_engine, world.org_a)
    for inv, words in ((waiting, SAYS_NOT_ACCEPTED), (unissued, SAYS_NOT_ISSUED)):
        assert_refused(words, lambda inv=inv: pay(act_as, world.finance, world.org_a, inv["id"]))
        assert_refused(words, lambda inv=inv: export(act_as, world.finance, world.org_a, [inv["id"]]))
    assert money_state(admin_engine, world.org_a) == before

    answer(act_as, world.contractor_x_user, world.org_a, waiting["id"], "accepted")
    pay(act_as, world.finance, world.org_a, waiting["id"])
    assert (
        owner_query(admin_engine, "select status from invoices where id = :i", i=waiting["id"])[0]["status"] == "paid"
    )


def test_the_database_refuses_to_pay_what_the_contractor_has_not_accepted_even_when_the_doors_ask_nothing(
    act_as, admin_engine, world, monkeypatch
):
    # A query gone wrong: the doors learn of no answer at all. The database still refuses (sql/self_billing.sql).
    monkeypatch.setattr("backoffice.queries.payability.acceptance_blocks", lambda session, ids: {})
    monkeypatch.setattr("backoffice.services.ap_export.acceptance_blocks", lambda session, ids: {})
    set_org(admin_engine, world.org_a, acceptance_required=True)
    waiting, rejected = issued_invoices(act_as, admin_engine, world, ("100.00", "150.00"))
    answer(act_as, world.contractor_x_user, world.org_a, rejected["id"], "rejected", REJECTION)
    before = money_state(admin_engine, world.org_a)
    for inv, words in ((waiting, DB_NOT_ACCEPTED), (rejected, DB_REJECTED)):
        assert_refused(
            f"{inv['invoice_number']} {words}", lambda inv=inv: pay(act_as, world.finance, world.org_a, inv["id"])
        )
        assert_refused(
            f"{inv['invoice_number']} {words}", lambda inv=inv: export(act_as, world.finance, world.org_a, [inv["id"]])
        )
    assert money_state(admin_engine, world.org_a) == before


def test_where_acceptance_is_required_silence_makes_an_invoice_payable(act_as, admin_engine, world):
    set_org(admin_engine, world.org_a, acceptance_required=True)
    (inv,) = issued_invoices(act_as, admin_engine, world, ago=timedelta(days=15))
    batch = export(act_as, world.finance, world.org_a, [inv["id"]])
    assert batch.row_count == 1


@pytest.mark.parametrize("required", [False, True])
def test_a_rejected_invoice_is_never_paid(act_as, admin_engine, world, required):
    set_org(admin_engine, world.org_a, acceptance_required=required)
    (inv,) = issued_invoices(act_as, admin_engine, world)
    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", REJECTION)
    before = money_state(admin_engine, world.org_a)
    assert_refused(SAYS_REJECTED, lambda: pay(act_as, world.finance, world.org_a, inv["id"]))
    assert_refused(SAYS_REJECTED, lambda: export(act_as, world.finance, world.org_a, [inv["id"]]))
    assert money_state(admin_engine, world.org_a) == before


def test_without_the_requirement_an_invoice_awaiting_acceptance_is_paid(act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    pay(act_as, world.finance, world.org_a, inv["id"])
    assert status(admin_engine, inv["id"]) == "paid"


# --- who is told -----------------------------------------------------------------------------------------------------


def test_a_rejection_goes_back_to_the_owner_and_finance_with_the_reason(act_as, admin_engine, world, database):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    run_jobs(database, admin_engine, org_ids=[world.org_a])  # the approval's own notices first
    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", REJECTION)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    mails = emails(admin_engine, world.org_a, "self_billing.invoice_rejected")
    assert sorted(m["recipient"] for m in mails) == sorted([world.owner.email, world.finance.email])
    for m in mails:
        assert m["subject"] == f"Contractor X {world.suffix} rejected self-billed invoice {inv['invoice_number']}"
        assert REJECTION in m["text"] and "Xena X" in m["text"]
        assert f"{BASE_URL}/invoices/{inv['id']}" in m["text"]
    notices = owner_query(
        admin_engine,
        "select * from notifications where org_id = :o and event = :e",
        o=world.org_a,
        e="self_billing.invoice_rejected",
    )
    assert sorted(n["user_id"] for n in notices) == sorted([world.owner.id, world.finance.id])
    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "accepted")  # an acceptance tells nobody
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert len(emails(admin_engine, world.org_a, "self_billing.invoice_rejected")) == 2
