"""calendar feeds: each therapist's feed secret

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 19:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_feeds',
    sa.Column('therapist_id', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('therapist_id'),
    sa.UniqueConstraint('secret_hash')
    )


def downgrade() -> None:
    op.drop_table('calendar_feeds')
