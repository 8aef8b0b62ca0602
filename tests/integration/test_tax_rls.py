"""Tax forms under row-level security (issue 18, item 5), proven with raw SQL as the web role and the worker role:
a contractor reads its own tax profile and no other's; project owners read no profile and no TIN; only finance and
admins read a TIN row, which holds ciphertext only; the year's filings are finance's. And the rule of a complete
form in SQL (sql/tax.sql) says exactly what the domain's says, over every combination of facts."""

from __future__ import annotations

import itertools

import pytest
from kit.engagements import owner_query
from kit.tax import DIGITS, KEY, fill_in
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.domain.tax import ProfileFacts, blocked_words, tax_form_problem
from backoffice.services.tin_cipher import decrypt_tin


@pytest.fixture
def filed(world, act_as):
    """Contractor X's user filled in a complete W-9; contractor Y has none."""
    profile = fill_in(act_as, world.contractor_x_user, world.org_a)
    act_as(None, None).rollback()
    return profile


def rows(session, sql, **params):
    return session.execute(text(sql), params).mappings().all()


def test_a_contractor_reads_its_own_tax_profile_and_no_other(world, act_as, filed):
    x = act_as(world.contractor_x_user.id, world.org_a)
    assert [r["contractor_id"] for r in rows(x, "select contractor_id from tax_profiles")] == [world.contractor_x]
    y = act_as(world.contractor_y_user.id, world.org_a)
    assert rows(y, "select * from tax_profiles") == []
    assert rows(y, "select * from tax_profiles where contractor_id = :c", c=world.contractor_x) == []


def test_a_contractor_cannot_read_a_tin_back_not_even_its_own(world, act_as, filed):
    x = act_as(world.contractor_x_user.id, world.org_a)
    assert rows(x, "select * from tax_tins") == []
    assert rows(x, "select tin_last4 from tax_profiles")[0]["tin_last4"] == "6789"


def test_owners_read_no_tax_profile_and_no_tin(world, act_as, filed):
    owner = act_as(world.owner.id, world.org_a)
    assert rows(owner, "select * from tax_profiles") == []
    assert rows(owner, "select * from tax_tins") == []


def test_finance_and_admins_read_the_profile_and_the_tin_row_which_holds_ciphertext_only(world, act_as, filed):
    for person in (world.finance, world.admin):
        s = act_as(person.id, world.org_a)
        (profile,) = rows(s, "select * from tax_profiles")
        assert profile["contractor_id"] == world.contractor_x and profile["tin_last4"] == "6789"
        (tin,) = rows(s, "select * from tax_tins")
        stored = bytes(tin["ciphertext"])
        assert DIGITS.encode() not in stored and b"3456789" not in stored
        assert decrypt_tin(KEY, world.org_a, stored) == DIGITS
        # Nothing the web role reads has the number in the clear: not the profile, not the trail.
        assert DIGITS not in str(dict(profile)) and "3456789" not in str(dict(profile))
        trail = rows(s, "select data::text as data from audit_events where action = 'tax_profile.saved'")
        assert trail and all("3456789" not in r["data"] for r in trail)


def test_the_tin_is_not_in_the_clear_anywhere_in_its_rows(admin_engine, world, filed):
    """As the owner role, the ground truth: every text column of every tax row, and the ciphertext's bytes."""
    found = owner_query(
        admin_engine,
        "select (select count(*) from tax_profiles p where p.org_id = :o and row_to_json(p)::text ~ '3456789')"
        "     + (select count(*) from tax_tins t where t.org_id = :o"
        "        and (row_to_json(t)::text ~ '3456789' or position('\\x333435363738'::bytea in t.ciphertext) > 0))"
        "     + (select count(*) from audit_events e where e.org_id = :o and e.data::text ~ '3456789') as n",
        o=world.org_a,
    )
    assert found == [{"n": 0}]


def test_a_ciphertext_moved_to_another_organization_does_not_decrypt(world, act_as, filed):
    from backoffice.services.tin_cipher import TinKeyError

    s = act_as(world.finance.id, world.org_a)
    (tin,) = rows(s, "select ciphertext from tax_tins")
    with pytest.raises(TinKeyError):
        decrypt_tin(KEY, world.org_b, bytes(tin["ciphertext"]))


def test_another_organization_reads_nothing(world, act_as, filed):
    b = act_as(world.admin_b.id, world.org_b)
    for table in ("tax_profiles", "tax_tins", "tax_year_filings"):
        assert rows(b, f"select * from {table}") == []
    assert rows(b, "select * from tax_form_problems(array[cast(:c as uuid)])", c=world.contractor_x) == []


def test_the_worker_role_holds_no_privilege_on_the_tax_tables(world, as_worker, filed):
    worker = as_worker(world.org_a)
    for table in ("tax_profiles", "tax_tins", "tax_year_filings"):
        with pytest.raises(DBAPIError, match="permission denied"):
            worker.execute(text(f"select count(*) from {table}"))
        worker.rollback()
    # What it may ask (automatic payment skips a blocked contractor): the problem, nothing of the form.
    (x,) = rows(worker, "select * from tax_form_problems(array[cast(:c as uuid)])", c=world.contractor_x)
    assert set(x) == {"contractor_id", "required", "problem"} and x["problem"] is None


def test_whether_a_form_is_complete_is_told_to_every_member_of_the_org_a_contractor_its_own(world, act_as, filed):
    both = [world.contractor_x, world.contractor_y]
    sql = "select contractor_id, problem from tax_form_problems(cast(:ids as uuid[])) order by problem nulls first"
    for person in (world.owner, world.finance, world.admin):
        s = act_as(person.id, world.org_a)
        assert [tuple(r.values()) for r in rows(s, sql, ids=both)] == [
            (world.contractor_x, None),
            (world.contractor_y, "No W-9 on file"),
        ]
    y = act_as(world.contractor_y_user.id, world.org_a)
    assert [tuple(r.values()) for r in rows(y, sql, ids=both)] == [(world.contractor_y, "No W-9 on file")]
    nobody = act_as(world.outsider.id, world.org_a)
    assert rows(nobody, sql, ids=both) == []


def test_a_contractor_cannot_write_another_contractors_form_nor_name_its_tins_last_four(world, act_as, filed):
    y = act_as(world.contractor_y_user.id, world.org_a)
    with pytest.raises(DBAPIError, match="row-level security"):
        y.execute(
            text(
                "insert into tax_profiles (org_id, contractor_id, kind, name, certified_by)"
                " values (:o, :c, 'w9', 'Forged', :me)"
            ),
            {"o": world.org_a, "c": world.contractor_x, "me": world.contractor_y_user.id},
        )
    y.rollback()
    x = act_as(world.contractor_x_user.id, world.org_a)
    with pytest.raises(DBAPIError, match="permission denied"):
        x.execute(text("update tax_profiles set tin_last4 = '0000'"))
    x.rollback()
    with pytest.raises(DBAPIError, match=r"append-only|permission denied"):
        x.execute(text("update tax_tins set last4 = '0000'"))
    x.rollback()


def test_staff_do_not_fill_in_a_contractors_form(world, act_as, filed):
    for person in (world.admin, world.owner, world.finance):
        s = act_as(person.id, world.org_a)
        changed = s.execute(
            text("update tax_profiles set name = 'Edited', certified_by = :me where contractor_id = :c"),
            {"me": person.id, "c": world.contractor_x},
        ).rowcount
        assert changed == 0
        with pytest.raises(DBAPIError, match="row-level security"):
            s.execute(
                text("insert into tax_profiles (org_id, contractor_id, kind, certified_by) values (:o, :c, 'w9', :me)"),
                {"o": world.org_a, "c": world.contractor_y, "me": person.id},
            )
        s.rollback()


def test_a_year_filing_is_finance_and_admins_only(world, act_as):
    insert = (
        "insert into tax_year_filings (org_id, year, filename, content, size_bytes, sha256, threshold_minor,"
        " row_count, total_minor, totals, exported_by) values (:o, 2026, 'f.csv', 'x', 1,"
        " encode(sha256('x'), 'hex'), 200000, 0, 0, '{}', :me)"
    )
    for person in (world.owner, world.contractor_x_user):
        s = act_as(person.id, world.org_a)
        with pytest.raises(DBAPIError, match="row-level security"):
            s.execute(text(insert), {"o": world.org_a, "me": person.id})
        s.rollback()
    f = act_as(world.finance.id, world.org_a)
    f.execute(text(insert), {"o": world.org_a, "me": world.finance.id})
    assert len(rows(f, "select * from tax_year_filings")) == 1
    owner = act_as(world.owner.id, world.org_a)
    assert rows(owner, "select * from tax_year_filings") == []


def test_a_filing_keeps_its_file_and_is_reopened_once_with_a_reason(world, act_as):
    f = act_as(world.finance.id, world.org_a)
    f.execute(
        text(
            "insert into tax_year_filings (org_id, year, filename, content, size_bytes, sha256, threshold_minor,"
            " row_count, total_minor, totals, exported_by) values (:o, 2026, 'f.csv', 'x', 1,"
            " encode(sha256('x'), 'hex'), 200000, 0, 0, '{}', :me)"
        ),
        {"o": world.org_a, "me": world.finance.id},
    )
    f.commit()
    f = act_as(world.finance.id, world.org_a)
    with pytest.raises(DBAPIError, match="permission denied"):
        f.execute(text("update tax_year_filings set content = 'y'"))
    f.rollback()
    reopen = "update tax_year_filings set reopened_by = :me, reopened_at = now(), reopen_reason = :why"
    with pytest.raises(DBAPIError, match=r"reopen_reason_check|with a reason"):
        f.execute(text(reopen), {"me": world.finance.id, "why": "   "})
    f.rollback()
    with pytest.raises(DBAPIError, match="row-level security"):
        f.execute(text(reopen), {"me": world.admin.id, "why": "Someone else's name"})
    f.rollback()
    f.execute(text(reopen), {"me": world.finance.id, "why": "A payment was recorded late"})
    f.commit()
    f = act_as(world.finance.id, world.org_a)
    with pytest.raises(DBAPIError, match="reopened already"):
        f.execute(text(reopen), {"me": world.finance.id, "why": "Again"})
    f.rollback()


# --- parity: the SQL rule and the domain's -----------------------------------------------------------------

KINDS = (None, "w9", "w8ben", "w8ben_e")
TEXTS = ("", " ", "x")


def _combinations():
    for kind, name, classification, has_tin, line1, city, region, postal, country in itertools.product(
        KINDS,
        TEXTS,
        ("", "individual"),
        (False, True),
        ("", "1 Main"),
        ("", "C"),
        ("", "IL"),
        ("", "62701"),
        ("", "US", "us", "DE"),
    ):
        yield ProfileFacts(kind, name, classification, has_tin, line1, city, region, postal, country)


def test_the_sql_rule_of_a_complete_form_equals_the_domains_over_every_combination(admin_engine):
    facts = list(_combinations())
    columns = list(
        zip(
            *[
                (
                    f.kind,
                    f.name,
                    f.classification,
                    f.has_tin,
                    f.address_line1,
                    f.city,
                    f.region,
                    f.postal_code,
                    f.country,
                )
                for f in facts
            ],
            strict=True,
        )
    )
    with admin_engine.connect() as conn:
        answers = conn.execute(
            text(
                "select tax_form_problem(k, n, c, t, a, ci, r, p, co), tax_blocked_words(tax_form_problem(k, n, c,"
                " t, a, ci, r, p, co)) from unnest(cast(:k as text[]), cast(:n as text[]), cast(:c as text[]),"
                " cast(:t as boolean[]), cast(:a as text[]), cast(:ci as text[]), cast(:r as text[]),"
                " cast(:p as text[]), cast(:co as text[])) with ordinality u(k, n, c, t, a, ci, r, p, co, i)"
                " order by i"
            ),
            dict(zip(("k", "n", "c", "t", "a", "ci", "r", "p", "co"), map(list, columns), strict=True)),
        ).all()
    assert len(answers) == len(facts) > 3000
    expected = [(tax_form_problem(f), blocked_words(p) if (p := tax_form_problem(f)) else None) for f in facts]
    mismatches = [(f, tuple(a), e) for f, a, e in zip(facts, answers, expected, strict=True) if tuple(a) != e]
    assert mismatches == []
