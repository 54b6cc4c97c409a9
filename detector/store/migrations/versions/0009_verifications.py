"""核实 on request: verification requests, each camera's look and its pictures; answers go out through the outbox

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("problem_code", sa.String(5), nullable=False),
        sa.Column("location", sa.JSON(), nullable=False),
        sa.Column("reference", sa.String(128)),
        sa.Column("requested_by", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("result", sa.String(16)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("answered_at", TS),
    )
    op.create_table(
        "verification_looks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "verification_id",
            sa.Integer(),
            sa.ForeignKey("verifications.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("camera_id", sa.String(64), nullable=False, index=True),
        sa.Column("preset", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.Text()),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("frame_at", TS),
        sa.Column("answered_at", TS),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_table(
        "verification_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "look_id",
            sa.Integer(),
            sa.ForeignKey("verification_looks.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.String(255), nullable=False, index=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("verification_id", sa.Integer()))
        batch.create_foreign_key(
            "fk_outbox_verification", "verifications", ["verification_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("fk_outbox_verification", type_="foreignkey")
        batch.drop_column("verification_id")
    op.drop_table("verification_files")
    op.drop_table("verification_looks")
    op.drop_table("verifications")
