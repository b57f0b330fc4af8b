"""Invoices: a status (open, paid, void), for the MCP tool search_invoices

Revision ID: 1feebc1c7e16
Revises: 3f0c2a9d7b41
Create Date: 2026-12-08 01:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "1feebc1c7e16"
down_revision = "3f0c2a9d7b41"
branch_labels = None
depends_on = None


def upgrade():
    # Existing invoices are open: nothing says they were paid.
    op.add_column(
        "invoices",
        sa.Column("status", sa.String(length=10), server_default="open", nullable=False),
    )


def downgrade():
    with op.batch_alter_table("invoices") as batch_op:
        batch_op.drop_column("status")
