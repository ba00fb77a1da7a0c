"""add column orders.coupon

Revision ID: c3d4e5f6a1b2
Revises: b2c3d4e5f6a1
Create Date: 2024-06-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d4e5f6a1b2"
down_revision: str | None = "b2c3d4e5f6a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("coupon", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "coupon")
