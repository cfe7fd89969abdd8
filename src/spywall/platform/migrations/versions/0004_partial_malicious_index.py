"""ix_deliveries_malicious holds only the malicious deliveries (a partial index)

Revision ID: 0004
Revises: 0003

The analysis looks deliveries up by this index only for ``malicious IS true``; the full
index took an entry for every call and message ingested, each written at ingest.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MALICIOUS_ONLY = sa.column("malicious", sa.Boolean).is_(True)


def upgrade() -> None:
    op.drop_index("ix_deliveries_malicious", table_name="deliveries")
    op.create_index("ix_deliveries_malicious", "deliveries", ["malicious"],
                    sqlite_where=_MALICIOUS_ONLY, postgresql_where=_MALICIOUS_ONLY)


def downgrade() -> None:
    op.drop_index("ix_deliveries_malicious", table_name="deliveries")
    op.create_index("ix_deliveries_malicious", "deliveries", ["malicious"])
