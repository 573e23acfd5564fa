"""search stamps: a random value per therapist and per room, renewed by each change a slot
search would see, so every availability process can tell whether its computed searches hold

Revision ID: 0006_search_stamps
Revises: 0005_request_id
Create Date: 2026-12-02 16:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006_search_stamps'
down_revision = '0005_request_id'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('search_stamps',
    sa.Column('scope', sa.String(length=80), nullable=False),
    sa.Column('stamp', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('scope')
    )


def downgrade() -> None:
    op.drop_table('search_stamps')
