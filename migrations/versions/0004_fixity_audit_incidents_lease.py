"""fixity audit units and checks, audits, incidents, scheduler lease

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 11:39:17.211248
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=100), nullable=False),
    sa.Column('scope', sa.String(length=300), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('files_checked', sa.Integer(), nullable=False),
    sa.Column('bytes_checked', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audits')),
    sa.UniqueConstraint('identifier', name=op.f('uq_audits_identifier'))
    )
    with op.batch_alter_table('audits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audits_scope'), ['scope'], unique=False)

    op.create_table('scheduler_leases',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_leases'))
    )
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('aip_id', sa.Integer(), nullable=True),
    sa.Column('location', sa.String(length=100), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('timeline', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['aip_id'], ['aips.id'], name=op.f('fk_incidents_aip_id_aips')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_aip_id'), ['aip_id'], unique=False)

    op.create_table('stored_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('replica_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha512', sa.String(length=128), nullable=False),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_ok', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['replica_id'], ['replicas.id'], name=op.f('fk_stored_files_replica_id_replicas')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_files')),
    sa.UniqueConstraint('replica_id', 'path', name=op.f('uq_stored_files_replica_id'))
    )
    with op.batch_alter_table('stored_files', schema=None) as batch_op:
        batch_op.create_index('ix_stored_files_due', ['replica_id', 'last_checked_at'], unique=False)

    op.create_table('fixity_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stored_file_id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.String(length=100), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('sha512_found', sa.String(length=128), nullable=True),
    sa.Column('size_found', sa.BigInteger(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['stored_file_id'], ['stored_files.id'], name=op.f('fk_fixity_checks_stored_file_id_stored_files')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fixity_checks'))
    )
    with op.batch_alter_table('fixity_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fixity_checks_audit_id'), ['audit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fixity_checks_stored_file_id'), ['stored_file_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('fixity_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fixity_checks_stored_file_id'))
        batch_op.drop_index(batch_op.f('ix_fixity_checks_audit_id'))

    op.drop_table('fixity_checks')
    with op.batch_alter_table('stored_files', schema=None) as batch_op:
        batch_op.drop_index('ix_stored_files_due')

    op.drop_table('stored_files')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_aip_id'))

    op.drop_table('incidents')
    op.drop_table('scheduler_leases')
    with op.batch_alter_table('audits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audits_scope'))

    op.drop_table('audits')

