"""the waitlist: entries, offers, the holds an offer keeps; manage tokens for an entry

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('waitlist_entries',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('therapist_id', sa.String(length=64), nullable=True),
    sa.Column('session_type', sa.String(length=64), nullable=False),
    sa.Column('modality', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('sessions', sa.Integer(), nullable=False),
    sa.Column('windows', sa.JSON(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('until_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('utc_weekdays', sa.Integer(), nullable=False),
    sa.Column('utc_hours', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client_name', sa.String(length=200), nullable=True),
    sa.Column('client_email', sa.String(length=320), nullable=True),
    sa.Column('client_phone', sa.String(length=64), nullable=True),
    sa.Column('client_timezone', sa.String(length=64), nullable=True),
    sa.Column('booking_id', sa.String(length=36), nullable=True),
    sa.Column('course_id', sa.String(length=36), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('position')
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE SEQUENCE waitlist_entries_position_seq')
    op.create_index('ix_waitlist_entries_scan', 'waitlist_entries',
                    ['status', 'therapist_id', 'position'], unique=False)
    op.create_index('ix_waitlist_entries_client_email', 'waitlist_entries', ['client_email'],
                    unique=False)
    op.create_table('waitlist_offers',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('session_type', sa.String(length=64), nullable=False),
    sa.Column('modality', sa.String(length=16), nullable=False),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('starts', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['entry_id'], ['waitlist_entries.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_waitlist_offers_entry', 'waitlist_offers', ['entry_id'], unique=False)
    op.create_index('ix_waitlist_offers_time', 'waitlist_offers', ['therapist_id', 'start'],
                    unique=False)
    op.create_index('uq_waitlist_offers_live_entry', 'waitlist_offers', ['entry_id'],
                    unique=True, sqlite_where=sa.text("status = 'live'"),
                    postgresql_where=sa.text("status = 'live'"))
    op.create_table('waitlist_offer_holds',
    sa.Column('hold_id', sa.String(length=36), nullable=False),
    sa.Column('offer_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['hold_id'], ['bookings.id'], ),
    sa.ForeignKeyConstraint(['offer_id'], ['waitlist_offers.id'], ),
    sa.PrimaryKeyConstraint('hold_id')
    )
    op.create_index(op.f('ix_waitlist_offer_holds_offer_id'), 'waitlist_offer_holds',
                    ['offer_id'], unique=False)
    with op.batch_alter_table('manage_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waitlist_entry_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_manage_tokens_waitlist_entry_id'),
                              ['waitlist_entry_id'], unique=False)
        batch_op.create_foreign_key('fk_manage_tokens_waitlist_entry_id', 'waitlist_entries',
                                    ['waitlist_entry_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('manage_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_manage_tokens_waitlist_entry_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_manage_tokens_waitlist_entry_id'))
        batch_op.drop_column('waitlist_entry_id')
    op.drop_index(op.f('ix_waitlist_offer_holds_offer_id'), table_name='waitlist_offer_holds')
    op.drop_table('waitlist_offer_holds')
    op.drop_index('uq_waitlist_offers_live_entry', table_name='waitlist_offers')
    op.drop_index('ix_waitlist_offers_time', table_name='waitlist_offers')
    op.drop_index('ix_waitlist_offers_entry', table_name='waitlist_offers')
    op.drop_table('waitlist_offers')
    op.drop_index('ix_waitlist_entries_client_email', table_name='waitlist_entries')
    op.drop_index('ix_waitlist_entries_scan', table_name='waitlist_entries')
    op.drop_table('waitlist_entries')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP SEQUENCE waitlist_entries_position_seq')
