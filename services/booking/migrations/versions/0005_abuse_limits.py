"""the client address of holds and bookings, the owner of an Idempotency-Key, the nonce of
the emailed manage link of a booking or course, who cancelled, the audit log (issue #16)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bookings') as batch:
        batch.add_column(sa.Column('client_address', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('link_nonce', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('cancelled_by_id', sa.String(length=80), nullable=True))
        batch.create_index('ix_bookings_client_address', ['client_address'])
        batch.create_index('ix_bookings_client_email', ['client_email'])
    with op.batch_alter_table('courses') as batch:
        batch.add_column(sa.Column('link_nonce', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('cancelled_by_id', sa.String(length=80), nullable=True))
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=80), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('booking_id', sa.String(length=36), nullable=True),
    sa.Column('course_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_log_booking_id', 'audit_log', ['booking_id'])
    op.create_index('ix_audit_log_course_id', 'audit_log', ['course_id'])
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.add_column(sa.Column('owner', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_index('ix_audit_log_course_id', table_name='audit_log')
    op.drop_index('ix_audit_log_booking_id', table_name='audit_log')
    op.drop_table('audit_log')
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.drop_column('owner')
    with op.batch_alter_table('bookings') as batch:
        batch.drop_index('ix_bookings_client_email')
        batch.drop_index('ix_bookings_client_address')
        batch.drop_column('cancelled_by_id')
        batch.drop_column('link_nonce')
        batch.drop_column('client_address')
    with op.batch_alter_table('courses') as batch:
        batch.drop_column('cancelled_by_id')
        batch.drop_column('link_nonce')
