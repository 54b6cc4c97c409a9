"""candidates keep the picture of their first sighting (the case's "before", kept across restarts)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("first_frame", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("first_frame")
