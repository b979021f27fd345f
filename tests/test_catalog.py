"""The catalog read on every PostgreSQL major version this machine has (embedded 18, system 15 where present)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from synap_verify.catalog import read_catalog
from synap_verify.datagen.schema import load_schema_file
from synap_verify.pipeline import LEGACY_SCHEMA
from synap_verify.server import Server, embedded, system


@pytest.fixture(scope="module", params=["embedded", "system"])
def any_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "system" and system.find_bindir() is None:
        pytest.skip("no system PostgreSQL on this machine")
    server = embedded.start() if request.param == "embedded" else system.start()
    yield server
    server.stop()


def test_legacy_schema_reads_the_same_on_every_version(any_server: Server) -> None:
    with any_server.connect() as conn:
        conn.execute("CREATE DATABASE catalog_check")
    load_schema_file(any_server.dsn("catalog_check"), LEGACY_SCHEMA)
    with psycopg.connect(any_server.dsn("catalog_check")) as conn:
        catalog = read_catalog(conn)
    columns = [c for t in catalog.tables.values() for c in t.columns]
    fks = [fk for t in catalog.tables.values() for fk in t.foreign_keys]
    assert len(catalog.tables) == 117
    assert sum(c.type == "json" for c in columns) == 120
    assert sum(c.type == "timestamp without time zone" for c in columns) == 299
    assert sum(fk.on_delete == "NO ACTION" for fk in fks) == 249
    assert sum(name.startswith("backup_") for name in catalog.tables) == 16
    forced = {n for n, t in catalog.tables.items() if t.rls_enabled and not t.rls_forced}
    assert forced == {"workspaces", "workflows", "agents", "invoices", "billing_events"}
    assert not catalog.tables["invoices"].policies and catalog.tables["workspaces"].policies
    assert all(ix.method != "gin" for t in catalog.tables.values() for ix in t.indexes)
    assert catalog.server_version >= 130000
