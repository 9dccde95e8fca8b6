"""search totals from the header index

A search with FITS criteria counts and sums its matches from ``ix_fits_headers_search`` alone:
``fits_headers`` gets copies of its file's ``version_id``, ``role``, ``puid`` and ``size`` (a
``files`` row never changes once written), filled here from ``files``, and the index holds them.
Before, every match cost one look-up into ``files``.

``ix_files_search_totals`` becomes ``files(version_id, role, puid, size)``: it now serves the
searches without FITS criteria (all files, a dataset, an AIP), read by AIP version.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 02:30:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

FITS_SEARCH_0007 = ('instrument', 'wavelength', 'obs_start', 'file_id')
FITS_SEARCH = (*FITS_SEARCH_0007, 'version_id', 'role', 'puid', 'size')
FILES_TOTALS_0007 = ('id', 'version_id', 'role', 'size', 'puid')
FILES_TOTALS = ('version_id', 'role', 'puid', 'size')
COPIED = ('version_id', 'role', 'puid', 'size')


def upgrade() -> None:

    with op.batch_alter_table('fits_headers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('role', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('puid', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('size', sa.BigInteger(), nullable=True))

    headers = sa.table('fits_headers', sa.column('file_id'), *(sa.column(c) for c in COPIED))
    files = sa.table('files', sa.column('id'), *(sa.column(c) for c in COPIED))
    op.execute(headers.update().where(files.c.id == headers.c.file_id)
               .values({c: files.c[c] for c in COPIED}))

    with op.batch_alter_table('fits_headers', schema=None) as batch_op:
        batch_op.alter_column('version_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('role', existing_type=sa.String(length=20), nullable=False)
        batch_op.alter_column('size', existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_fits_headers_version_id_aip_versions'), 'aip_versions',
                                    ['version_id'], ['id'])
        batch_op.drop_index('ix_fits_headers_search')
        batch_op.create_index('ix_fits_headers_search', list(FITS_SEARCH), unique=False)

    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index('ix_files_search_totals')
        batch_op.create_index('ix_files_search_totals', list(FILES_TOTALS), unique=False)


def downgrade() -> None:

    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index('ix_files_search_totals')
        batch_op.create_index('ix_files_search_totals', list(FILES_TOTALS_0007), unique=False)

    with op.batch_alter_table('fits_headers', schema=None) as batch_op:
        batch_op.drop_index('ix_fits_headers_search')
        batch_op.create_index('ix_fits_headers_search', list(FITS_SEARCH_0007), unique=False)
        batch_op.drop_constraint(batch_op.f('fk_fits_headers_version_id_aip_versions'), type_='foreignkey')
        for column in reversed(COPIED):
            batch_op.drop_column(column)
