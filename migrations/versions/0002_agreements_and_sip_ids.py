"""submission agreements and SIP identifiers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 11:03:35.956469
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agreements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('producer', sa.String(length=200), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreements')),
    sa.UniqueConstraint('identifier', 'version', name=op.f('uq_agreements_identifier'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreement_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sip_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('sip_sequence', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('quarantine_path', sa.Text(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_deliveries_sip_id'), ['sip_id'])
        batch_op.create_foreign_key(batch_op.f('fk_deliveries_agreement_id_agreements'), 'agreements', ['agreement_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_deliveries_agreement_id_agreements'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_deliveries_sip_id'), type_='unique')
        batch_op.drop_column('quarantine_path')
        batch_op.drop_column('sip_sequence')
        batch_op.drop_column('sip_id')
        batch_op.drop_column('agreement_id')

    op.drop_table('agreements')

