"""initial catalog

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 10:48:59.186983
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=300), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('type', sa.String(length=3), nullable=False),
    sa.Column('version', sa.String(length=100), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('identifier', name=op.f('uq_agents_identifier'))
    )
    op.create_table('producers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_producers')),
    sa.UniqueConstraint('name', name=op.f('uq_producers_name'))
    )
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=200), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['producer_id'], ['producers.id'], name=op.f('fk_datasets_producer_id_producers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('identifier', name=op.f('uq_datasets_identifier'))
    )
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=100), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disposition', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.Column('file_count', sa.Integer(), nullable=True),
    sa.Column('byte_count', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_deliveries_dataset_id_datasets')),
    sa.ForeignKeyConstraint(['producer_id'], ['producers.id'], name=op.f('fk_deliveries_producer_id_producers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('identifier', name=op.f('uq_deliveries_identifier'))
    )
    op.create_table('aips',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=100), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('object_path', sa.Text(), nullable=False),
    sa.Column('head_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_aips_dataset_id_datasets')),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_aips_delivery_id_deliveries')),
    sa.ForeignKeyConstraint(['producer_id'], ['producers.id'], name=op.f('fk_aips_producer_id_producers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aips')),
    sa.UniqueConstraint('identifier', name=op.f('uq_aips_identifier'))
    )
    with op.batch_alter_table('aips', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aips_dataset_id'), ['dataset_id'], unique=False)

    op.create_table('aip_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('aip_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('inventory_sha512', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['aip_id'], ['aips.id'], name=op.f('fk_aip_versions_aip_id_aips')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aip_versions')),
    sa.UniqueConstraint('aip_id', 'number', name=op.f('uq_aip_versions_aip_id'))
    )
    op.create_table('events',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=3), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=3), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('outcome_detail', sa.Text(), nullable=True),
    sa.Column('aip_id', sa.Integer(), nullable=True),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('objects', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['aip_id'], ['aips.id'], name=op.f('fk_events_aip_id_aips')),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_events_delivery_id_deliveries')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_events')),
    sa.UniqueConstraint('identifier', name=op.f('uq_events_identifier'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_aip_id'), ['aip_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_type'), ['type'], unique=False)

    op.create_table('replicas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('aip_id', sa.Integer(), nullable=False),
    sa.Column('location', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('last_verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_verified_ok', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['aip_id'], ['aips.id'], name=op.f('fk_replicas_aip_id_aips')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replicas')),
    sa.UniqueConstraint('aip_id', 'location', name=op.f('uq_replicas_aip_id'))
    )
    op.create_table('event_agents',
    sa.Column('event_seq', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_event_agents_agent_id_agents')),
    sa.ForeignKeyConstraint(['event_seq'], ['events.seq'], name=op.f('fk_event_agents_event_seq_events')),
    sa.PrimaryKeyConstraint('event_seq', 'agent_id', 'role', name=op.f('pk_event_agents'))
    )
    op.create_table('files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('content_path', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('sha512', sa.String(length=128), nullable=False),
    sa.Column('puid', sa.String(length=50), nullable=True),
    sa.Column('mime', sa.String(length=100), nullable=True),
    sa.Column('format_name', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('original_name', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['version_id'], ['aip_versions.id'], name=op.f('fk_files_version_id_aip_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_files')),
    sa.UniqueConstraint('version_id', 'path', name=op.f('uq_files_version_id'))
    )
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.create_index('ix_files_sha256', ['sha256'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index('ix_files_sha256')

    op.drop_table('files')
    op.drop_table('event_agents')
    op.drop_table('replicas')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_type'))
        batch_op.drop_index(batch_op.f('ix_events_delivery_id'))
        batch_op.drop_index(batch_op.f('ix_events_aip_id'))

    op.drop_table('events')
    op.drop_table('aip_versions')
    with op.batch_alter_table('aips', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_aips_dataset_id'))

    op.drop_table('aips')
    op.drop_table('deliveries')
    op.drop_table('datasets')
    op.drop_table('producers')
    op.drop_table('agents')

