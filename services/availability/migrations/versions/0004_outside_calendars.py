"""outside calendars: a therapist's linked iCalendar address, its busy times, the bookings
it came to overlap, and the outbox that tells notifications about those

Revision ID: 0004_outside
Revises: 0003
Create Date: 2026-12-02 12:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_outside'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_published_at'), ['published_at'], unique=False)

    op.create_table('outside_conflicts',
    sa.Column('booking_id', sa.String(length=64), nullable=False),
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('busy_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('busy_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('booking_id')
    )
    with op.batch_alter_table('outside_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outside_conflicts_therapist_id'), ['therapist_id'], unique=False)

    op.create_table('outside_calendars',
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('etag', sa.String(length=512), nullable=True),
    sa.Column('last_modified', sa.String(length=128), nullable=True),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expanded_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('busy_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('therapist_id')
    )
    op.create_table('outside_busy',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['outside_calendars.therapist_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outside_busy', schema=None) as batch_op:
        batch_op.create_index('ix_outside_busy_therapist_start', ['therapist_id', 'start'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outside_busy', schema=None) as batch_op:
        batch_op.drop_index('ix_outside_busy_therapist_start')

    op.drop_table('outside_busy')
    op.drop_table('outside_calendars')
    with op.batch_alter_table('outside_conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outside_conflicts_therapist_id'))

    op.drop_table('outside_conflicts')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_published_at'))

    op.drop_table('outbox')
