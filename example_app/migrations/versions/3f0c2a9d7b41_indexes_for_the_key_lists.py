"""Indexes for the key lists: newest first by owner and by organization, rotations

Revision ID: 3f0c2a9d7b41
Revises: 77e9d0ed9ec5
Create Date: 2026-12-08 09:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "3f0c2a9d7b41"
down_revision = "77e9d0ed9ec5"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_owner_created", ["owner_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_api_keys_organization_created", ["organization_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_api_keys_rotated_from_id", ["rotated_from_id"], unique=False)


def downgrade():
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_rotated_from_id")
        batch_op.drop_index("ix_api_keys_organization_created")
        batch_op.drop_index("ix_api_keys_owner_created")
