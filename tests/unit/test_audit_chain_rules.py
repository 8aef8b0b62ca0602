import hashlib

from backoffice.domain.audit_chain import GENESIS, ChainRow, canonical_text, expected_hash, first_break


def _chain(n: int) -> list[ChainRow]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        row = ChainRow(
            "org",
            seq,
            f"2026-01-01T00:00:0{seq}.000000Z",
            "u",
            "a@example.com",
            "thing.done",
            "thing",
            str(seq),
            f'{{"n": {seq}}}',
            prev,
            "",
        )
        row = ChainRow(**{**row.__dict__, "hash": expected_hash(row)})
        rows.append(row)
        prev = row.hash
    return rows


def test_hash_is_sha256_of_the_canonical_text_ending_with_the_previous_hash():
    row = _chain(1)[0]
    assert canonical_text(row).endswith("|" + GENESIS)
    assert row.hash == hashlib.sha256(canonical_text(row).encode()).hexdigest()


def test_intact_chain_has_no_break():
    assert first_break(_chain(5)) is None


def test_altered_contents_are_named_at_the_altered_event():
    rows = _chain(4)
    rows[2] = ChainRow(**{**rows[2].__dict__, "data_text": '{"n": 999}'})
    b = first_break(rows)
    assert (b.seq, "altered" in b.reason) == (3, True)


def test_a_deleted_event_is_found_as_a_gap():
    rows = _chain(4)
    del rows[1]
    assert first_break(rows).seq == 3


def test_a_rewritten_link_is_found():
    rows = _chain(3)
    rows[1] = ChainRow(**{**rows[1].__dict__, "prev_hash": "f" * 64})
    assert "prev_hash" in first_break(rows).reason
