"""fits headers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 11:35:28.229639
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('fits_headers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('telescope', sa.String(length=100), nullable=True),
    sa.Column('instrument', sa.String(length=100), nullable=True),
    sa.Column('detector', sa.String(length=100), nullable=True),
    sa.Column('wavelength', sa.Float(), nullable=True),
    sa.Column('wave_unit', sa.String(length=30), nullable=True),
    sa.Column('exptime', sa.Float(), nullable=True),
    sa.Column('object', sa.String(length=200), nullable=True),
    sa.Column('level', sa.String(length=30), nullable=True),
    sa.Column('date_obs', sa.String(length=40), nullable=True),
    sa.Column('date_end', sa.String(length=40), nullable=True),
    sa.Column('obs_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('obs_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['files.id'], name=op.f('fk_fits_headers_file_id_files')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fits_headers')),
    sa.UniqueConstraint('file_id', name=op.f('uq_fits_headers_file_id'))
    )



def downgrade() -> None:

    op.drop_table('fits_headers')

