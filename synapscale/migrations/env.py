"""Alembic environment of the reference restructure.

The connection comes from the caller when there is one (the harness passes
``config.attributes["connection"]``), otherwise from ``SYNAPSCALE_DATABASE_URL`` or ``sqlalchemy.url``
for a human running ``alembic upgrade heads``. Each revision runs in its own transaction, so a
revision can leave it (``autocommit_block``) for ``CREATE INDEX CONCURRENTLY``.

``TARGET`` is where the revisions restructure (schema, tenant column, tenant setting): every revision's
``ops.begin()`` takes it from the context, and Alembic keeps its version table in that schema. The
planner writes the database's own here (``synap-verify plan --out``).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

from synapscale.migrations import ops

TARGET = ops.Target()
config = context.config


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        version_table_schema=TARGET.schema,
        transaction_per_migration=True,
        target_metadata=None,
        **{ops.TARGET_OPTION: TARGET},
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        run(given)
        return
    url = os.environ.get("SYNAPSCALE_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set SYNAPSCALE_DATABASE_URL (postgresql+psycopg://...) or sqlalchemy.url in alembic.ini")
    with create_engine(url).connect() as connection:
        run(connection)
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: the data migrations need a live connection")
main()
