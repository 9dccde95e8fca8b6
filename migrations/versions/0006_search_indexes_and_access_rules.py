"""search indexes and access rules

Indexes for searching a million files by instrument, telescope, wavelength, observation time and
format; the ``access_rules`` table (embargoes and restrictions on datasets or AIPs).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 12:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

FITS_INDEXES = ('instrument', 'telescope', 'wavelength', 'obs_start', 'obs_end')


def upgrade() -> None:

    op.create_table('access_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('aip_id', sa.Integer(), nullable=True),
    sa.Column('embargo_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('users', sa.JSON(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint('(dataset_id IS NULL) <> (aip_id IS NULL)', name=op.f('ck_access_rules_one_target')),
    sa.ForeignKeyConstraint(['aip_id'], ['aips.id'], name=op.f('fk_access_rules_aip_id_aips')),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_access_rules_dataset_id_datasets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_rules')),
    sa.UniqueConstraint('aip_id', name=op.f('uq_access_rules_aip_id')),
    sa.UniqueConstraint('dataset_id', name=op.f('uq_access_rules_dataset_id'))
    )
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_files_puid'), ['puid'], unique=False)

    with op.batch_alter_table('fits_headers', schema=None) as batch_op:
        for column in FITS_INDEXES:
            batch_op.create_index(batch_op.f(f'ix_fits_headers_{column}'), [column], unique=False)


def downgrade() -> None:

    with op.batch_alter_table('fits_headers', schema=None) as batch_op:
        for column in reversed(FITS_INDEXES):
            batch_op.drop_index(batch_op.f(f'ix_fits_headers_{column}'))

    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_files_puid'))

    op.drop_table('access_rules')
