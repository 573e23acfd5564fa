"""outbox rows keep the X-Request-ID of the request that wrote them (progress's outbox)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('request_id', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('request_id')
