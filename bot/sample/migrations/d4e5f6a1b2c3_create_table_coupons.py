"""create table coupons

Revision ID: d4e5f6a1b2c3
Revises: c3d4e5f6a1b2
Create Date: 2024-06-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4e5f6a1b2c3"
down_revision: str | None = "c3d4e5f6a1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("percent_off", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("coupons")
