"""model deployments (active / shadow) and the findings of shadow cameras

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(64), nullable=False, index=True),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("cameras", sa.JSON()),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
    )
    op.create_table(
        "model_findings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("model_deployments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("box", sa.JSON(), nullable=False),
    )
    op.create_index("ix_model_findings_run", "model_findings", ["run_id", "camera_id", "ts"])


def downgrade() -> None:
    op.drop_index("ix_model_findings_run", "model_findings")
    op.drop_table("model_findings")
    op.drop_table("model_deployments")
