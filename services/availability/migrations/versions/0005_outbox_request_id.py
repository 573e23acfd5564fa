"""outbox rows keep the X-Request-ID of the request that wrote them (availability's outbox)

Revision ID: 0005_request_id
Revises: 0004_outside
Create Date: 2026-12-02 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_request_id'
down_revision = '0004_outside'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('request_id', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('request_id')
