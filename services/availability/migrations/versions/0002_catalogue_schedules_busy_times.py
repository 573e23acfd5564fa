"""catalogue (session types, rooms, therapists, tokens), schedules, time off, busy times

Seeds the two DIT session types the clinic always offers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:37:13.458416
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('busy_times',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('room', sa.String(length=64), nullable=True),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('blocked_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('busy_times', schema=None) as batch_op:
        batch_op.create_index('ix_busy_times_room_start', ['room', 'start'], unique=False)
        batch_op.create_index('ix_busy_times_therapist_start', ['therapist_id', 'start'], unique=False)

    op.create_table('rooms',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    session_types = op.create_table('session_types',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(session_types, [
        {'id': 'dit-assessment', 'name': 'DIT assessment', 'duration_minutes': 50},
        {'id': 'dit-session', 'name': 'DIT session', 'duration_minutes': 50},
    ])
    op.create_table('therapists',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('bio', sa.Text(), nullable=True),
    sa.Column('specialties', sa.JSON(), nullable=False),
    sa.Column('modalities', sa.JSON(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('schedules',
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('weekly', sa.JSON(), nullable=False),
    sa.Column('buffer_minutes', sa.Integer(), nullable=False),
    sa.Column('slot_interval_minutes', sa.Integer(), nullable=False),
    sa.Column('min_notice_hours', sa.Integer(), nullable=False),
    sa.Column('horizon_days', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('therapist_id')
    )
    op.create_table('therapist_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('therapist_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_therapist_tokens_therapist_id'), ['therapist_id'], unique=False)

    op.create_table('time_off',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('time_off', schema=None) as batch_op:
        batch_op.create_index('ix_time_off_therapist_start', ['therapist_id', 'start'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('time_off', schema=None) as batch_op:
        batch_op.drop_index('ix_time_off_therapist_start')

    op.drop_table('time_off')
    with op.batch_alter_table('therapist_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_therapist_tokens_therapist_id'))

    op.drop_table('therapist_tokens')
    op.drop_table('schedules')
    op.drop_table('therapists')
    op.drop_table('session_types')
    op.drop_table('rooms')
    with op.batch_alter_table('busy_times', schema=None) as batch_op:
        batch_op.drop_index('ix_busy_times_therapist_start')
        batch_op.drop_index('ix_busy_times_room_start')

    op.drop_table('busy_times')
