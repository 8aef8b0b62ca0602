"""Remittance advice (issue 17, item 7): after a payment run on any rail (by hand, an AP batch, a remittance file,
Stripe) each contractor paid gets one email listing every invoice the run paid it, and one PDF of the same in the
data room, which its own users (and finance, and admins) may read and nobody else (sql/data_room.sql).

Payments are recorded through the real services (Stripe's through the real SDK against the local fake), the real
worker sends the notices and issues the advices, and the database is read back as the owner role; what the PDF
says is read with pypdf. Who may read a document is judged with raw SQL as the web role.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, date, datetime

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL, run_jobs
from kit.money import approved_invoices, export, party, pay, payments_of, set_org, today
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from backoffice.db import make_session_factory
from backoffice.errors import NotFound
from backoffice.jobs import queue
from backoffice.services import audit, payments, remittance_advice, stripe_payouts
from backoffice.services.notifications import worker_actor

# The Stripe fake and a ready connected account for contractor X: the fixtures fake, configured and ready
# (tests/kit/stripe.py).


def send_by_stripe(act_as, world, invoice_ids):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    return stripe_payouts.send(session, actor, list(invoice_ids), configured=True)


# --- reading what was written ---------------------------------------------------------------------


def run_emails(admin_engine, org_id) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from email_messages where org_id = :o and event = 'payment.run' order by recipient",
        o=org_id,
    )


def emails_to(admin_engine, org_id, person) -> list[dict]:
    return [m for m in run_emails(admin_engine, org_id) if m["recipient"] == person.email]


def advices(admin_engine, org_id) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from documents where org_id = :o and kind = 'remittance_advice' order by contractor_id",
        o=org_id,
    )


def advice_of(admin_engine, org_id, contractor_id) -> dict:
    (doc,) = [d for d in advices(admin_engine, org_id) if d["contractor_id"] == contractor_id]
    return doc


def pdf_text(content) -> str:
    """The PDF's text, whitespace (no-break and narrow spaces included) collapsed to single spaces."""
    pages = PdfReader(io.BytesIO(bytes(content))).pages
    return " ".join(" ".join(page.extract_text() for page in pages).replace("\u202f", " ").replace("\xa0", " ").split())


def en_us(day: date) -> str:
    """A date as the en_US reader sees it on the advice and in the email: "Dec 5, 2026"."""
    return f"{day:%b} {day.day}, {day.year}"


def paid_today() -> date:
    return datetime.now(UTC).date()


def work(database, admin_engine, *org_ids) -> None:
    run_jobs(database, admin_engine, org_ids=org_ids)


def run_of(admin_engine, invoice_id) -> uuid.UUID:
    (payment,) = payments_of(admin_engine, invoice_id)
    return payment["run_id"]


def advice_link(run_id, contractor_id) -> str:
    return f"{BASE_URL}/documents/remittance-advice/{run_id}/{contractor_id}"


# --- by hand: each recorded payment is its own run ---------------------------------------------------


def test_a_payment_recorded_by_hand_is_one_run_one_email_and_one_advice_with_its_figures(
    world, act_as, admin_engine, database
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    pay(act_as, world.finance, world.org_a, inv["id"], reference="ACH 7781")
    work(database, admin_engine, world.org_a)

    run_id = run_of(admin_engine, inv["id"])
    (email,) = emails_to(admin_engine, world.org_a, world.contractor_x_user)
    assert email["subject"] == f"Paid: {inv['invoice_number']} — $900.00"
    assert f'href="{advice_link(run_id, world.contractor_x)}"' in email["html"]
    assert email["entity_type"] == "payment_run" and email["entity_id"] == str(run_id)

    (doc,) = advices(admin_engine, world.org_a)
    assert (doc["run_id"], doc["contractor_id"], doc["invoice_id"], doc["engagement_id"]) == (
        run_id,
        world.contractor_x,
        None,
        None,
    )
    assert doc["sha256"] == hashlib.sha256(bytes(doc["content"])).hexdigest()
    assert doc["filename"] == f"remittance-advice-{paid_today():%Y-%m-%d}-{str(run_id)[:8]}.pdf"
    said = pdf_text(doc["content"])
    for words in (
        "Remittance advice",
        f"Payer Org A {world.suffix}",
        f"Payee Contractor X {world.suffix}",
        f"Payment date {en_us(paid_today())}",
        "Reference ACH 7781",
        "Paid by ACH / bank transfer",
        f"{inv['invoice_number']} Roof — Roof part 1",
        "$1,000.00 -$100.00 $900.00",
    ):
        assert words in said, (words, said)
    (event,) = owner_query(
        admin_engine,
        "select * from audit_events where org_id = :o and action = 'document.remittance_advice_issued'",
        o=world.org_a,
    )
    assert (event["entity_type"], event["entity_id"]) == ("payment_run", str(run_id))
    assert (event["data"]["document_id"], event["data"]["sha256"]) == (str(doc["id"]), doc["sha256"])
    assert event["data"]["invoices"] == [inv["invoice_number"]]


def test_two_payments_recorded_by_hand_are_two_runs(world, act_as, admin_engine, database):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    pay(act_as, world.finance, world.org_a, a["id"], reference="CHK 1")
    pay(act_as, world.finance, world.org_a, b["id"], reference="CHK 2")
    work(database, admin_engine, world.org_a)
    assert run_of(admin_engine, a["id"]) != run_of(admin_engine, b["id"])
    assert len(emails_to(admin_engine, world.org_a, world.contractor_x_user)) == 2
    assert len(advices(admin_engine, world.org_a)) == 2


# --- an AP batch: one run, one email per contractor listing all of its invoices -----------------------


@pytest.fixture
def batch_run(world, act_as, admin_engine, database):
    """Contractor X's two invoices and contractor Y's one, exported in one batch and paid as one run."""
    _, xs = approved_invoices(act_as, admin_engine, party(world))
    _, ys = approved_invoices(act_as, admin_engine, party(world, "y"), ("500.00",), title="Fence")
    batch = export(act_as, world.finance, world.org_a, [i["id"] for i in [*xs, *ys]])
    session, actor = sign_in(act_as, world.finance, world.org_a)
    payments.record_batch_payment(session, actor, batch.id, payments.PaymentInput(today(), "ACH run 42", "ach"))
    work(database, admin_engine, world.org_a)
    return xs, ys


def test_a_batch_payment_tells_each_contractor_once_listing_every_invoice_it_paid_it(world, admin_engine, batch_run):
    (xa, xb), (ya,) = batch_run
    (run_id,) = {run_of(admin_engine, i["id"]) for i in (xa, xb, ya)}  # one run for the whole batch

    (to_x,) = emails_to(admin_engine, world.org_a, world.contractor_x_user)
    assert to_x["subject"] == "Paid: 2 invoices — $2,700.00"
    for inv, gross, retainage, net in (
        (xa, "$1,000.00", "$100.00", "$900.00"),
        (xb, "$2,000.00", "$200.00", "$1,800.00"),
    ):
        assert (
            f"{inv['invoice_number']}: {inv['description']}: gross {gross}, retainage {retainage}, net {net}"
            in (to_x["text"])
        )
    assert ya["invoice_number"] not in to_x["text"]
    for words in ("Total paid: $2,700.00", f"Paid on: {en_us(paid_today())}", "Reference: ACH run 42"):
        assert words in to_x["text"], words
    assert f'href="{advice_link(run_id, world.contractor_x)}"' in to_x["html"]

    (to_y,) = emails_to(admin_engine, world.org_a, world.contractor_y_user)
    assert to_y["subject"] == f"Paid: {ya['invoice_number']} — $450.00"
    assert xa["invoice_number"] not in to_y["text"] and xb["invoice_number"] not in to_y["text"]

    (to_owner,) = emails_to(admin_engine, world.org_a, world.owner)  # the owner of all three engagements: once
    assert to_owner["subject"] == "Paid: 3 invoices on your engagements — $3,150.00"
    assert all(i["invoice_number"] in to_owner["text"] for i in (xa, xb, ya))
    assert emails_to(admin_engine, world.org_a, world.finance) == []


def test_a_batch_payment_issues_one_advice_per_contractor_with_its_invoices_and_totals(world, admin_engine, batch_run):
    (xa, xb), (ya,) = batch_run
    x_doc, y_doc = (advice_of(admin_engine, world.org_a, c) for c in (world.contractor_x, world.contractor_y))
    assert len(advices(admin_engine, world.org_a)) == 2
    x_said, y_said = pdf_text(x_doc["content"]), pdf_text(y_doc["content"])
    assert (
        f"{xa['invoice_number']} Roof — Roof part 1" in x_said
        and f"{xb['invoice_number']} Roof — Roof part 2" in x_said
    )
    assert "$1,000.00 -$100.00 $900.00" in x_said and "$2,000.00 -$200.00 $1,800.00" in x_said
    assert "Total $3,000.00 -$300.00 $2,700.00" in x_said
    assert ya["invoice_number"] not in x_said and f"Contractor Y {world.suffix}" not in x_said
    assert f"{ya['invoice_number']} Fence — Fence part 1" in y_said and "Total $500.00 -$50.00 $450.00" in y_said
    assert xa["invoice_number"] not in y_said
    assert "Reference ACH run 42" in x_said and "Reference ACH run 42" in y_said


def test_the_advice_is_issued_once_however_often_its_job_runs_and_the_database_holds_one_per_run(
    world, admin_engine, database, batch_run, act_as
):
    doc = advice_of(admin_engine, world.org_a, world.contractor_x)
    session = act_as(world.finance.id, world.org_a)
    queue.issue_remittance_advice(session, world.org_a, doc["run_id"], world.contractor_x)
    session.commit()
    work(database, admin_engine, world.org_a)
    assert [d["id"] for d in advices(admin_engine, world.org_a) if d["contractor_id"] == world.contractor_x] == [
        doc["id"]
    ]
    with pytest.raises(IntegrityError, match="documents_one_remittance_advice_per_run"), admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into documents (org_id, kind, run_id, contractor_id, transaction_id, title, filename, content,"
                " size_bytes, sha256) values (:o, 'remittance_advice', :r, :c, 'TX-0123456789ABCDEF0123', 'Again',"
                " 'again.pdf', '\\x25504446'::bytea, 4, encode(sha256('\\x25504446'::bytea), 'hex'))"
            ),
            {"o": world.org_a, "r": doc["run_id"], "c": world.contractor_x},
        )


def test_an_advice_names_its_run_and_no_invoice_and_a_self_billed_invoice_its_invoice_and_no_run(
    world, admin_engine, batch_run
):
    doc = advice_of(admin_engine, world.org_a, world.contractor_x)
    invoiced = owner_query(
        admin_engine, "select * from documents where org_id = :o and kind = 'self_billed_invoice'", o=world.org_a
    )
    for values, refused in (
        ({"kind": "'remittance_advice'", "run_id": "null"}, "documents_kind_shape"),
        ({"kind": "'remittance_advice'", "invoice_id": f"'{invoiced[0]['invoice_id']}'"}, "documents_kind_shape"),
        ({"kind": "'self_billed_invoice'"}, "documents_kind_shape"),
        ({"kind": "'receipt'"}, "documents_kind_check"),  # the kind's name before revision 0031
        ({"kind": "'memo'"}, "documents_kind_check"),
    ):
        row = {"kind": "'remittance_advice'", "run_id": f"'{uuid.uuid4()}'", "invoice_id": "null", **values}
        with pytest.raises(IntegrityError, match=refused), admin_engine.begin() as conn:
            conn.execute(
                text(
                    "insert into documents (org_id, kind, run_id, invoice_id, contractor_id, transaction_id, title,"
                    f" filename, content, size_bytes, sha256) values (:o, {row['kind']}, {row['run_id']}::uuid,"
                    f" {row['invoice_id']}::uuid, :c, 'TX-0123456789ABCDEF0124', 'X', 'x.pdf', '\\x25504446'::bytea, 4,"
                    " encode(sha256('\\x25504446'::bytea), 'hex'))"
                ),
                {"o": world.org_a, "c": doc["contractor_id"]},
            )


def test_audit_verify_from_documents_finds_each_advices_issue_event(world, admin_engine, batch_run):
    with make_session_factory(admin_engine)() as session:
        unrecorded = audit.unrecorded_documents(session)
    ours = {
        str(d["id"]) for d in owner_query(admin_engine, "select id from documents where org_id = :o", o=world.org_a)
    }
    assert len(ours) == 5  # three self-billed invoices, two remittance advices
    assert [u for u in unrecorded if u.document.split("(")[-1].rstrip(")") in ours] == []


# --- a remittance file: one run, each payment with its own reference ---------------------------------


def test_a_remittance_file_is_one_run_and_its_email_and_advice_give_each_invoices_reference(
    world, act_as, admin_engine, database
):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    content = "Invoice number,Amount,Paid date,Reference\n" + "".join(
        f"{i['invoice_number']},{i['net_minor'] / 100:.2f},{today()},{ref}\n"
        for i, ref in ((a, "BANK-1"), (b, "BANK-2"))
    )
    session, actor = sign_in(act_as, world.finance, world.org_a)
    payments.import_remittance(session, actor, content.encode(), "wire")
    work(database, admin_engine, world.org_a)

    (run_id,) = {run_of(admin_engine, i["id"]) for i in (a, b)}
    (email,) = emails_to(admin_engine, world.org_a, world.contractor_x_user)
    assert email["subject"] == "Paid: 2 invoices — $2,700.00"
    assert (
        f"{a['invoice_number']}: {a['description']}: gross $1,000.00, retainage $100.00, net $900.00 (reference BANK-1)"
        in (email["text"])
    )
    assert "(reference BANK-2)" in email["text"] and "Paid by: Wire" in email["text"]
    (doc,) = advices(admin_engine, world.org_a)
    assert doc["run_id"] == run_id
    said = pdf_text(doc["content"])
    assert f"{a['invoice_number']} Roof — Roof part 1 BANK-1 $1,000.00" in said
    assert f"{b['invoice_number']} Roof — Roof part 2 BANK-2 $2,000.00" in said
    assert "Paid by Wire" in said and "Total $3,000.00 -$300.00 $2,700.00" in said


# --- Stripe: the run's attempts, told when the last one ends -----------------------------------------


def test_a_stripe_run_tells_the_contractor_once_when_its_last_transfer_is_made(
    world, act_as, admin_engine, database, configured, ready
):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    sent = send_by_stripe(act_as, world, [a["id"], b["id"]])
    work(database, admin_engine, world.org_a)

    assert {run_of(admin_engine, i["id"]) for i in (a, b)} == {sent.run_id}
    transfers = {t["metadata"]["invoice_number"]: t["id"] for t in configured.transfers()}
    (email,) = emails_to(admin_engine, world.org_a, world.contractor_x_user)
    assert email["subject"] == "Paid: 2 invoices — $2,700.00"
    assert "Paid by: Stripe transfer" in email["text"]
    for inv in (a, b):
        assert f"(reference {transfers[inv['invoice_number']]})" in email["text"]
    assert f'href="{advice_link(sent.run_id, world.contractor_x)}"' in email["html"]
    (doc,) = advices(admin_engine, world.org_a)
    said = pdf_text(doc["content"])
    assert doc["run_id"] == sent.run_id
    assert "Paid by Stripe transfer" in said and all(t in said for t in transfers.values())
    assert "Total $3,000.00 -$300.00 $2,700.00" in said


def test_a_stripe_run_with_a_refusal_lists_only_what_stripe_paid(
    world, act_as, admin_engine, database, configured, ready
):
    _, invoices = approved_invoices(act_as, admin_engine, party(world))
    configured.fail_next("/v1/transfers", "insufficient_funds", method="POST")
    send_by_stripe(act_as, world, [i["id"] for i in invoices])
    work(database, admin_engine, world.org_a)

    (paid,) = [i for i in invoices if payments_of(admin_engine, i["id"])]
    (refused,) = [i for i in invoices if i is not paid]
    (email,) = emails_to(admin_engine, world.org_a, world.contractor_x_user)
    assert paid["invoice_number"] in email["text"] and refused["invoice_number"] not in email["text"]
    (doc,) = advices(admin_engine, world.org_a)
    assert refused["invoice_number"] not in pdf_text(doc["content"])


def test_a_stripe_run_stripe_refused_whole_tells_no_contractor(
    world, act_as, admin_engine, database, configured, ready
):
    _, invoices = approved_invoices(act_as, admin_engine, party(world))
    configured.set_balance("usd", 0)
    send_by_stripe(act_as, world, [i["id"] for i in invoices])
    work(database, admin_engine, world.org_a)
    assert run_emails(admin_engine, world.org_a) == []
    assert advices(admin_engine, world.org_a) == []


# --- who reads an advice: raw SQL as the web role ----------------------------------------------------


@pytest.fixture
def two_orgs_paid(world, act_as, admin_engine, database, batch_run):
    """Org A's batch run (contractors X and Y, with their self-billed invoices) and one run of org B's paying
    contractor Z."""
    set_org(admin_engine, world.org_b, segregation_of_duties=False)
    _, (z,) = approved_invoices(act_as, admin_engine, party(world, "z"), ("300.00",))
    pay(act_as, world.admin_b, world.org_b, z["id"], reference="SEPA 5")
    work(database, admin_engine, world.org_a, world.org_b)
    return world


def visible(act_as, person, org_id) -> set[tuple[str, uuid.UUID]]:
    session = act_as(person.id, org_id)
    rows = {(r.kind, r.contractor_id) for r in session.execute(text("select kind, contractor_id from documents"))}
    session.rollback()
    return rows


def test_a_contractors_user_reads_its_own_contractors_documents_and_no_other(act_as, admin_engine, two_orgs_paid):
    w = two_orgs_paid
    for user, org_id, contractor in (
        (w.contractor_x_user, w.org_a, w.contractor_x),
        (w.contractor_y_user, w.org_a, w.contractor_y),
        (w.contractor_z_user, w.org_b, w.contractor_z),
    ):
        # its remittance advices and its self-billed invoices
        expected = {("remittance_advice", contractor), ("self_billed_invoice", contractor)}
        assert visible(act_as, user, org_id) == expected, user
    assert visible(act_as, w.owner, w.org_a) == set()  # an owner reads no document
    staff = {
        (d["kind"], d["contractor_id"])
        for d in owner_query(admin_engine, "select * from documents where org_id = :o", o=w.org_a)
    }
    assert {k for k, _ in staff} == {"self_billed_invoice", "remittance_advice"}
    for who in (w.finance, w.admin):
        assert visible(act_as, who, w.org_a) == staff


def test_a_contractor_naming_another_contractors_or_organizations_advice_reads_nothing(
    act_as, admin_engine, two_orgs_paid
):
    w = two_orgs_paid
    others = owner_query(
        admin_engine,
        "select id, org_id, contractor_id from documents where contractor_id <> :c",
        c=w.contractor_x,
    )
    assert {d["org_id"] for d in others} >= {w.org_a, w.org_b}
    session = act_as(w.contractor_x_user.id, w.org_a)
    for doc in others:
        found = session.execute(
            text("select id from documents where id = :i and org_id = :o and contractor_id = :c"),
            {"i": doc["id"], "o": doc["org_id"], "c": doc["contractor_id"]},
        ).all()
        assert found == [], doc
    # Claiming org B (no membership there) shows nothing either.
    session = act_as(w.contractor_x_user.id, w.org_b)
    assert session.execute(text("select id from documents")).all() == []
    session.rollback()


def test_no_web_request_files_or_changes_an_advice_not_even_its_contractors(act_as, admin_engine, two_orgs_paid):
    w = two_orgs_paid
    doc = advice_of(admin_engine, w.org_a, w.contractor_x)
    for who in (w.contractor_x_user, w.finance):
        for sql in (
            "insert into documents (org_id, kind, run_id, contractor_id, transaction_id, title, filename, content,"
            " size_bytes, sha256) values (:o, 'remittance_advice', gen_random_uuid(), :c, 'TX-0123456789ABCDEF0125',"
            " 'Planted', 'p.pdf', '\\x25504446'::bytea, 4, encode(sha256('\\x25504446'::bytea), 'hex'))",
            "update documents set title = 'Changed' where id = :i",
            "delete from documents where id = :i",
        ):
            session = act_as(who.id, w.org_a)
            with pytest.raises(DBAPIError) as refused:
                session.execute(text(sql), {"o": w.org_a, "c": w.contractor_x, "i": doc["id"]})
            session.rollback()
            assert refused.value.orig.sqlstate == "42501", (who, sql)
    assert advice_of(admin_engine, w.org_a, w.contractor_x)["title"] == doc["title"]


def test_the_issuing_job_for_another_organizations_run_issues_nothing(world, as_worker, admin_engine, two_orgs_paid):
    z_doc = advice_of(admin_engine, world.org_b, world.contractor_z)
    session = as_worker(world.org_a)
    with pytest.raises(NotFound):
        remittance_advice.issue_remittance_advice(
            session, worker_actor(world.org_a), z_doc["run_id"], world.contractor_z
        )
    assert len(owner_query(admin_engine, "select id from documents where run_id = :r", r=z_doc["run_id"])) == 1
