"""An AP export of 100,000 invoices nearer the COPY of its rows (issue 23, item 5): 4.3 s -> 1.5 s.

Revision ID: 0013_export_speed
Revises: 0012_service_health

The exported state stays on each invoice (status, batch_id, exported_at: one UPDATE of the batch's
invoices, whose row locks are what keeps two overlapping exports apart). What changes:

- ``invoices_move_guard`` asked, for each row, whether the batch is live under the caller's policies:
  3.7 s of the 4.3 s (``bench/ap_export.py``; EXPLAIN ANALYZE of the update). Its trigger now has a WHEN
  clause that lets an export's exact move (approved -> exported, ``exported_at`` now(), nothing else
  changed) through without calling it, and a new statement trigger, ``invoices_exported_check``, checks
  those rows once per statement from its transition table (each names a live batch of its organization
  written in this transaction). Every other update runs the per-row guard as before. An export's invoices
  keep their ``updated_at``: ``exported_at`` says when.
- ``ap_export_batches_complete`` checks a batch's invoices in one pass instead of four, and expects
  ``invoice_ids`` in invoice-number order, as the export has always written it; ``ap_export_batches_guard``
  compares rows without ``to_jsonb()`` of 100,000 ids.
- ``ap_export_chunks.data`` is stored uncompressed from now on, like ``evidence_chunks``: compressing 1 MiB of
  CSV cost about 6 ms a chunk on write (and decompressing it again on the check at commit), 40 to 80 ms of a
  100,000-row export, for a file that takes 12.9 MB on disk instead of 2.2 MB. Chunks already written stay
  as they are (both forms read the same).
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0013_export_speed"
down_revision = "0012_service_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table ap_export_chunks alter column data set storage external")
    apply_rls_policies()


def downgrade() -> None:
    # The SQL files are always the current ones, and every earlier revision applies them the same way.
    op.execute("alter table ap_export_chunks alter column data set storage extended")
