"""case lifecycle: the platform's time of a case's status, and stale status updates in the history

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("status_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("case_history") as batch:
        batch.add_column(sa.Column("stale", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("case_history") as batch:
        batch.drop_column("stale")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("status_at")
