"""create audit_log, drop orders.total_cents (irreversible)

Revision ID: e5f6a1b2c3d4
Revises: d4e5f6a1b2c3
Create Date: 2024-07-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5f6a1b2c3d4"
down_revision: str | None = "d4e5f6a1b2c3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.execute("INSERT INTO audit_log (message) SELECT 'user ' || name FROM users")
    op.drop_column("orders", "total_cents")


def downgrade() -> None:
    raise NotImplementedError(
        "e5f6a1b2c3d4 dropped orders.total_cents: the data is gone, restore from a backup"
    )
