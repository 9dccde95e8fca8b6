"""audit by sha256; covering indexes for search

Audit: ``stored_files.sha256`` (NULL for the rows written before this revision: those are audited by
their sha512) and ``fixity_checks.sha256_found``; ``fixity_checks(stored_file_id, audit_id)``, so
that "checked by this audit?" is one index probe (it replaces the index on ``stored_file_id``, its
prefix).

Search: ``fits_headers(instrument, wavelength, obs_start, file_id)``, read in observation order for
a page and covering the header side of the totals (it replaces the index on ``instrument``, its
prefix), and ``files(id, version_id, role, size, puid)``, covering the file side of the totals.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 14:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

FITS_SEARCH = ('instrument', 'wavelength', 'obs_start', 'file_id')
FILES_TOTALS = ('id', 'version_id', 'role', 'size', 'puid')


def upgrade() -> None:

    with op.batch_alter_table('stored_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))

    with op.batch_alter_table('fixity_checks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sha256_found', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_fixity_checks_unit_audit', ['stored_file_id', 'audit_id'], unique=False)
        batch_op.drop_index(batch_op.f('ix_fixity_checks_stored_file_id'))

    with op.batch_alter_table('fits_headers', schema=None) as batch_op:
        batch_op.create_index('ix_fits_headers_search', list(FITS_SEARCH), unique=False)
        batch_op.drop_index(batch_op.f('ix_fits_headers_instrument'))

    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.create_index('ix_files_search_totals', list(FILES_TOTALS), unique=False)


def downgrade() -> None:

    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index('ix_files_search_totals')

    with op.batch_alter_table('fits_headers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fits_headers_instrument'), ['instrument'], unique=False)
        batch_op.drop_index('ix_fits_headers_search')

    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 or newer), never a copy of the table: stored_files cannot
    # be dropped and re-created while fixity_checks rows refer to it (foreign keys are enforced)
    with op.batch_alter_table('fixity_checks', schema=None, recreate='never') as batch_op:
        batch_op.create_index(batch_op.f('ix_fixity_checks_stored_file_id'), ['stored_file_id'], unique=False)
        batch_op.drop_index('ix_fixity_checks_unit_audit')
        batch_op.drop_column('sha256_found')

    with op.batch_alter_table('stored_files', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('sha256')
