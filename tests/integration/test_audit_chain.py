"""The audit trail's hash chain in the real database: written by the trigger, checked by verify_chain.

Tampering is done as the owner role with the append-only trigger switched off inside one transaction,
and ALWAYS undone in a ``finally``: other tests verify every organization's chain in the database.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from contextlib import contextmanager

import pytest
from kit.audit import breaks_for, chain_of
from kit.signin import actor_of
from sqlalchemy import text

from backoffice.db import make_session_factory
from backoffice.domain.audit_chain import GENESIS, expected_hash
from backoffice.services import audit

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
def owner_session(admin_engine):
    with make_session_factory(admin_engine)() as session:
        yield session


@contextmanager
def append_only_trigger_off(admin_engine, *, also_chain: bool = False):
    """A connection in one transaction with the append-only trigger (and optionally the chain trigger)
    disabled; both are enabled again before the transaction commits."""
    triggers = ["audit_events_append_only"] + (["audit_events_chain"] if also_chain else [])
    with admin_engine.begin() as conn:
        conn.execute(text("set local lock_timeout = '5s'"))
        for t in triggers:
            conn.execute(text(f"alter table audit_events disable trigger {t}"))
        yield conn
        for t in triggers:
            conn.execute(text(f"alter table audit_events enable trigger {t}"))


def enabled_triggers(admin_engine) -> set[str]:
    with admin_engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "select tgname from pg_trigger"
                    " where tgrelid = 'audit_events'::regclass and not tgisinternal and tgenabled <> 'D'"
                )
            ).scalars()
        )


# --- writing ---------------------------------------------------------------------------------------------


def test_record_appends_chained_events(world, app_session, admin_engine):
    before = chain_of(admin_engine, world.org_a)
    actor = actor_of(app_session, world.admin.id, world.org_a)
    for n in (1, 2, 3):
        audit.record(app_session, actor, "test.recorded", "thing", f"T-{n}", {"n": n, "note": "äß ✓"})
    app_session.commit()

    after = chain_of(admin_engine, world.org_a)
    assert after[: len(before)] == before  # nothing before was touched
    new = after[len(before) :]
    assert [r.seq for r in new] == [len(before) + 1, len(before) + 2, len(before) + 3]
    assert [r.entity_id for r in new] == ["T-1", "T-2", "T-3"]
    assert new[0].prev_hash == before[-1].hash
    for prev, row in itertools.pairwise(new):
        assert row.prev_hash == prev.hash
    for row in new:
        assert HEX64.match(row.hash)
        assert row.hash == expected_hash(row)
        assert row.actor_user_id == str(world.admin.id)
        assert row.actor_label == world.admin.email


def test_each_org_chain_starts_at_seq_one_from_the_genesis_hash(world, admin_engine):
    for org in (world.org_a, world.org_b):
        rows = chain_of(admin_engine, org)
        assert rows[0].seq == 1
        assert rows[0].prev_hash == GENESIS
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))


def test_callers_cannot_choose_the_chain_fields(world, act_as, admin_engine):
    before = chain_of(admin_engine, world.org_a)
    s = act_as(world.admin.id, world.org_a)
    s.execute(
        text(
            "insert into audit_events"
            " (org_id, seq, occurred_at, actor_user_id, actor_label, action, entity_type, prev_hash, hash)"
            " values (:org, 999, '2000-01-01', :me, 'x', 'test.forged', 'thing', :h, :h)"
        ),
        {"org": world.org_a, "me": world.admin.id, "h": "f" * 64},
    )
    s.commit()
    last = chain_of(admin_engine, world.org_a)[-1]
    assert last.action == "test.forged"
    assert last.seq == len(before) + 1
    assert last.prev_hash == before[-1].hash
    assert last.hash == expected_hash(last) != "f" * 64
    assert not last.occurred_at_utc.startswith("2000-")


# --- verifying -------------------------------------------------------------------------------------------


def test_verify_finds_no_break_in_the_worlds_chains(world, owner_session, app_session):
    actor = actor_of(app_session, world.admin_b.id, world.org_b)
    audit.record(app_session, actor, "test.recorded", "thing", None, {"k": [1, 2, {"z": None}]})
    app_session.commit()
    checked, _ = audit.verify_chain(owner_session)
    assert checked >= len(chain_of(owner_session.get_bind(), world.org_a)) + len(
        chain_of(owner_session.get_bind(), world.org_b)
    )
    assert breaks_for(owner_session, world.org_a, world.org_b) == []


def test_verify_as_the_app_role_checks_only_the_orgs_it_can_read(world, act_as, admin_engine):
    s = act_as(world.admin.id, world.org_a)
    checked, breaks = audit.verify_chain(s)
    assert checked == len(chain_of(admin_engine, world.org_a))
    assert breaks == []
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert audit.verify_chain(s) == (0, [])


def test_verify_names_the_org_and_seq_of_an_altered_row(world, owner_session, admin_engine):
    rows = chain_of(admin_engine, world.org_a)
    target = rows[1]  # seq 2: not the last, so later links still hold
    with admin_engine.connect() as conn:
        original = conn.execute(
            text("select data::text from audit_events where org_id = :org and seq = :seq"),
            {"org": world.org_a, "seq": target.seq},
        ).scalar_one()
    try:
        with append_only_trigger_off(admin_engine) as conn:
            changed = conn.execute(
                text(
                    "update audit_events set data = data || '{\"tampered\": true}' where org_id = :org and seq = :seq"
                ),
                {"org": world.org_a, "seq": target.seq},
            )
            assert changed.rowcount == 1
        breaks = breaks_for(owner_session, world.org_a, world.org_b)
        assert [(b.org_id, b.seq) for b in breaks] == [(str(world.org_a), target.seq)]
        assert "row altered" in breaks[0].reason
    finally:
        with append_only_trigger_off(admin_engine) as conn:
            conn.execute(
                text("update audit_events set data = cast(:data as jsonb) where org_id = :org and seq = :seq"),
                {"data": original, "org": world.org_a, "seq": target.seq},
            )
    assert chain_of(admin_engine, world.org_a) == rows
    assert breaks_for(owner_session, world.org_a) == []
    assert {"audit_events_append_only", "audit_events_chain"} <= enabled_triggers(admin_engine)


def test_verify_finds_a_deleted_event_as_a_gap(world, owner_session, admin_engine):
    rows = chain_of(admin_engine, world.org_a)
    target = rows[2]
    with admin_engine.connect() as conn:
        saved = dict(
            conn.execute(
                text("select * from audit_events where org_id = :org and seq = :seq"),
                {"org": world.org_a, "seq": target.seq},
            )
            .mappings()
            .one()
        )
    try:
        with append_only_trigger_off(admin_engine) as conn:
            conn.execute(text("delete from audit_events where id = :id"), {"id": saved["id"]})
        breaks = breaks_for(owner_session, world.org_a)
        assert [(b.org_id, b.seq) for b in breaks] == [(str(world.org_a), target.seq + 1)]
        assert "missing" in breaks[0].reason
    finally:
        with append_only_trigger_off(admin_engine, also_chain=True) as conn:
            still_there = conn.execute(
                text("select count(*) from audit_events where id = :id"), {"id": saved["id"]}
            ).scalar_one()
            if not still_there:  # put the saved row back exactly, chain fields included
                cols = list(saved)
                values = ", ".join("cast(:data as jsonb)" if c == "data" else f":{c}" for c in cols)
                conn.execute(
                    text(f"insert into audit_events ({', '.join(cols)}) values ({values})"),
                    {**saved, "data": json.dumps(saved["data"])},
                )
    assert chain_of(admin_engine, world.org_a) == rows
    assert breaks_for(owner_session, world.org_a) == []
    assert {"audit_events_append_only", "audit_events_chain"} <= enabled_triggers(admin_engine)


def heads_for(session, *org_ids) -> dict[str, tuple[int, str]]:
    heads = audit.chain_heads(session)
    session.rollback()
    wanted = {str(o) for o in org_ids}
    return {h.org_id: (h.seq, h.hash) for h in heads if h.org_id in wanted}


def test_chain_heads_are_each_orgs_newest_event(world, owner_session, admin_engine):
    heads = heads_for(owner_session, world.org_a, world.org_b)
    for org in (world.org_a, world.org_b):
        last = chain_of(admin_engine, org)[-1]
        assert heads[str(org)] == (last.seq, last.hash)


def test_chain_heads_as_the_app_role_cover_only_the_trail_it_may_read(world, act_as, admin_engine):
    s = act_as(world.admin.id, world.org_a)
    heads = audit.chain_heads(s)
    last = chain_of(admin_engine, world.org_a)[-1]
    assert [(h.org_id, h.seq, h.hash) for h in heads] == [(str(world.org_a), last.seq, last.hash)]
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert audit.chain_heads(s) == []


def test_a_chain_cut_short_at_its_end_verifies_but_its_head_moves_back(world, owner_session, admin_engine):
    """Deleting the newest events leaves a chain that still links up: only a head kept from before shows it."""
    rows = chain_of(admin_engine, world.org_a)
    kept_head = heads_for(owner_session, world.org_a)[str(world.org_a)]
    with admin_engine.connect() as conn:
        saved = dict(
            conn.execute(
                text("select * from audit_events where org_id = :org and seq = :seq"),
                {"org": world.org_a, "seq": rows[-1].seq},
            )
            .mappings()
            .one()
        )
    try:
        with append_only_trigger_off(admin_engine) as conn:
            conn.execute(text("delete from audit_events where id = :id"), {"id": saved["id"]})
        assert breaks_for(owner_session, world.org_a) == []
        assert heads_for(owner_session, world.org_a)[str(world.org_a)] == (rows[-2].seq, rows[-2].hash) != kept_head
    finally:
        with append_only_trigger_off(admin_engine, also_chain=True) as conn:
            if not conn.execute(
                text("select count(*) from audit_events where id = :id"), {"id": saved["id"]}
            ).scalar_one():
                cols = list(saved)
                values = ", ".join("cast(:data as jsonb)" if c == "data" else f":{c}" for c in cols)
                conn.execute(
                    text(f"insert into audit_events ({', '.join(cols)}) values ({values})"),
                    {**saved, "data": json.dumps(saved["data"])},
                )
    assert chain_of(admin_engine, world.org_a) == rows
    assert heads_for(owner_session, world.org_a)[str(world.org_a)] == kept_head
    assert {"audit_events_append_only", "audit_events_chain"} <= enabled_triggers(admin_engine)


# --- concurrency -----------------------------------------------------------------------------------------


def test_concurrent_writers_to_one_org_keep_the_chain_gapless(world, app_sessions, admin_engine, owner_session):
    before = chain_of(admin_engine, world.org_a)
    writers, per_writer = 4, 8
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []
    people = [world.admin.id, world.admin.id, world.finance.id, world.contractor_x_user.id]

    def write(n: int) -> None:
        try:
            with app_sessions() as session:
                actor = actor_of(session, people[n], world.org_a)
                session.commit()
                barrier.wait(timeout=10)
                for i in range(per_writer):
                    audit.record(session, actor, "test.concurrent", "writer", f"{n}-{i}a")
                    time.sleep(0.002)  # hold the transaction open while others queue up
                    audit.record(session, actor, "test.concurrent", "writer", f"{n}-{i}b")
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    after = chain_of(admin_engine, world.org_a)
    assert [r.seq for r in after] == list(range(1, len(before) + writers * per_writer * 2 + 1))
    new = after[len(before) :]
    assert sorted(r.entity_id for r in new) == sorted(
        f"{n}-{i}{x}" for n in range(writers) for i in range(per_writer) for x in "ab"
    )
    # each transaction's two events are adjacent: the per-org lock is held until commit
    for r in new:
        if r.entity_id.endswith("a"):
            nxt = after[r.seq]  # seq is 1-based, so after[r.seq] is the event following r
            assert nxt.entity_id == r.entity_id[:-1] + "b"
    assert breaks_for(owner_session, world.org_a) == []
