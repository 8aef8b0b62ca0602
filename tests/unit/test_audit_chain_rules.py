import hashlib

import pytest

from backoffice.domain.audit_chain import (
    GENESIS,
    ChainRow,
    KeptHead,
    canonical_text,
    expected_hash,
    first_break,
    head_line,
    parse_heads,
)


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


ORG = "0b7e3c9a-5d2f-4e61-9a3b-1c2d3e4f5a6b"
HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_a_head_is_written_as_org_seq_hash():
    assert head_line(ORG, 42, HASH) == f"{ORG} 42 {HASH}"


def test_heads_are_read_one_a_line_skipping_blanks_and_comments_and_naming_where_each_was_kept():
    text = f"# kept 2026-12-04\n\n{ORG} 42 {HASH}  # from the digest\nhead    {ORG.upper()} 7 {HASH.upper()}\n"
    assert parse_heads(text, "heads.txt") == [
        KeptHead(ORG, 42, HASH, "heads.txt line 3"),
        KeptHead(ORG, 7, HASH, "heads.txt line 4"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        f"{ORG} 42",
        f"{ORG} 0 {HASH}",
        f"{ORG} -1 {HASH}",
        f"{ORG} 42 {HASH[:-1]}",
        f"{ORG} 42 {HASH}0",
        f"{ORG[:-1]} 42 {HASH}",
        f"{ORG} 42 {HASH} extra",
        f"org {ORG}: event #42 {HASH}",
    ],
)
def test_a_line_that_is_not_a_head_is_refused_naming_it(line):
    with pytest.raises(ValueError, match=r"^heads.txt line 2 is not 'org_id seq hash'"):
        parse_heads(f"{ORG} 1 {HASH}\n{line}\n", "heads.txt")
