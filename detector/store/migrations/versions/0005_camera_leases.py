"""camera leases and the live instances that hold them (several instances on one database)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "camera_leases",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), index=True),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("claimed_at", TS, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
    )
    op.create_table(
        "lease_instances",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("cameras", sa.JSON(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lease_instances")
    op.drop_table("camera_leases")
