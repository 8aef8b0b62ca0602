"""Header search: full-text indexes on engagements, contractors, milestones and invoices (issue 22, item 6).

Revision ID: 0033_search
Revises: 0032_partial_split_default

Expression GIN indexes, not stored generated columns: several guard triggers compare ``to_jsonb(new)`` with
``to_jsonb(old)`` in BEFORE UPDATE (sql/engagements.sql), and a BEFORE trigger sees a stored generated column of
NEW not yet computed, so every update would look like a change of that column. An expression index leaves the
rows, their triggers and ``select e.*`` as they were. sql/search.sql (search_hits, the door the search reads
through: under RLS the full-text match, not leakproof, is never an index condition) spells each expression as here;
tests/integration/test_search_rls.py checks the planner uses these indexes for them.

The 'simple' configuration: names, numbers and codes, not English prose, so no stemming and no stop words (the
embedded PostgreSQL has no contrib extension: no unaccent, no pg_trgm). Each vector also carries the row's tenant
as lexemes no typed word can produce ('~o' and the organization's id; '~c' and the contractor's on rows a
contractor reads): the query ANDs them in, so GIN intersects the typed words with the caller's own rows instead of
fetching every organization's matches from the heap for RLS to throw away (without btree_gin a GIN index cannot
lead with org_id). RLS still decides what anyone sees; the tags only make the search cheap.

Invoice numbers: the unique btrees on (org_id, invoice_number) and (org_id, number) answer an exact number
("ACME-000123", "123"); the GIN index answers a prefix ("ACME-0001") and the words of the description.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0033_search"
down_revision = "0032_partial_split_default"
branch_labels = None
depends_on = None


def _tags(*columns: str) -> str:
    """The tenant lexemes of a row: '~o<org id hex>', '~c<contractor id hex>'."""
    tags = ", ".join(f"'~{c[0]}' || replace({c}::text, '-', '')" for c in columns)
    return f"array_to_tsvector(array[{tags}])"


def _vector(text: str) -> str:
    """The words of ``text`` as a tsvector: hyphens, @, dots, slashes and underscores first become spaces, so that
    'LRG-000123' is 'lrg' and '000123' (the parser alone reads '-000123', a signed number) and an email is its
    words; queries/search.py splits what is typed the same way, into runs of letters and digits."""
    return f"to_tsvector('simple'::regconfig, translate({text}, '-@./_', '     '))"


def upgrade() -> None:
    op.execute(f"""
        create index if not exists engagements_search on engagements using gin ((
            {_vector("title || ' ' || coalesce(sow_reference, '')")} || {_tags("org_id", "contractor_id")}));
        create index if not exists milestones_search on milestones using gin ((
            {_vector("title || ' ' || deliverable")} || {_tags("org_id", "contractor_id")}));
        create index if not exists invoices_search on invoices using gin ((
            {_vector("invoice_number || ' ' || description")} || {_tags("org_id", "contractor_id")}));
        create index if not exists contractors_search on contractors using gin ((
            {_vector("legal_name || ' ' || email || ' ' || coalesce(ap_vendor_id, '')")} || {_tags("org_id")}));
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop index if exists contractors_search;
        drop index if exists invoices_search;
        drop index if exists milestones_search;
        drop index if exists engagements_search;
    """)
    apply_rls_policies()
