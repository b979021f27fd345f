"""The SQL workload taken from pg_stat_statements, on real embedded PostgreSQL servers.

A small ``synapscale_db`` schema, statements run through psycopg (server-side parameters, so
pg_stat_statements records them as ``$n``), then read back, chosen by share of calls and bound.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from synap_verify.errors import SynapError
from synap_verify.loadtest import workload
from synap_verify.server import Server, embedded
from synap_verify.server.templates import clone

SCHEMA = """
CREATE SCHEMA synapscale_db;
CREATE TABLE synapscale_db.tenants (id uuid PRIMARY KEY, name text);
CREATE TABLE synapscale_db.workspaces (id uuid PRIMARY KEY, tenant_id uuid REFERENCES synapscale_db.tenants,
                                       name text, slug text UNIQUE, note text);
"""
TENANTS = [str(uuid.uuid4()) for _ in range(2)]
# (statement, parameters, runs): the mix a "production" ran
MIX = [
    ("SELECT id, name FROM synapscale_db.workspaces WHERE tenant_id = %s ORDER BY name LIMIT %s", (TENANTS[0], 20), 50),
    ("SELECT w.name FROM synapscale_db.workspaces w WHERE w.id = %s AND w.tenant_id = %s", None, 30),
    ("INSERT INTO synapscale_db.workspaces (id, tenant_id, name, slug, note) VALUES (%s, %s, %s, %s, %s)", None, 10),
    ("SELECT count(*) FROM synapscale_db.workspaces WHERE length(name) > %s", (3,), 6),  # $1: no column
    ("SELECT name FROM synapscale_db.tenants WHERE id = %s", (TENANTS[1],), 3),
    ("SELECT 1", None, 40),  # not on the schema's tables
]


@pytest.fixture(scope="module")
def stats_server() -> Iterator[Server]:
    server = embedded.start(preload=("pg_stat_statements",))
    yield server
    server.stop()


def _db(server: Server, stats: bool) -> str:
    dsn = clone(server, "template1", prefix="synap_wl").dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
        for t in TENANTS:
            conn.execute("INSERT INTO synapscale_db.tenants VALUES (%s, 'acme')", (t,))
            for i in range(3):
                conn.execute("INSERT INTO synapscale_db.workspaces VALUES (%s, %s, %s, %s, NULL)",
                             (str(uuid.uuid4()), t, f"ws {i}", f"{t}-{i}"))
        if stats:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
    return dsn


def _production(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        ws = conn.execute("SELECT id::text FROM synapscale_db.workspaces LIMIT 1").fetchone()
        assert ws is not None
        for sql, params, runs in MIX:
            for _ in range(runs):
                if "INSERT" in sql:
                    params = (str(uuid.uuid4()), TENANTS[0], "new", f"slug-{uuid.uuid4().hex}", None)
                elif "w.id" in sql:
                    params = (ws[0], TENANTS[0])
                conn.execute(sql, params)  # type: ignore[arg-type]


def test_workload_from_statistics(stats_server: Server, tmp_path: Path) -> None:
    """Chosen by calls up to the share, parameters bound from the text and catalog, the unbindable one listed."""
    dsn = _db(stats_server, stats=True)
    _production(dsn)
    wl = workload.build(workload.read_statements(dsn), dsn, 0.95, "test")
    # 100 calls on the schema's tables (with the id lookup above); 95% of them: the four most called, one
    # of which has a parameter without a column (listed, not run); the tenants lookup is beyond the share
    assert wl.schema_calls == 100 and wl.run_calls == 90, wl.line()
    by_calls = {s.calls: s for s in wl.statements}
    assert [(p.source, p.column) for p in by_calls[50].params] == [("tenant", "tenant_id"), ("limit", "")]
    assert [(p.source, p.column) for p in by_calls[30].params] == [("column", "id"), ("tenant", "tenant_id")]
    assert [(p.source, p.column) for p in by_calls[10].params] == [
        ("fresh", "id"), ("tenant", "tenant_id"), ("written", "name"), ("fresh", "slug"), ("written", "note")]
    (skipped,) = wl.skipped
    assert skipped.calls == 6 and "$1: no column" in skipped.reason and "length(name)" in skipped.query

    spec = workload.prepare_run(wl, dsn, TENANTS)
    assert len(spec["statements"]) == 3
    sampled = spec["samples"][TENANTS[1]]["workspaces.id"]
    assert sampled and set(sampled) <= {
        r[0] for r in psycopg.connect(dsn).execute("SELECT id::text FROM synapscale_db.workspaces WHERE tenant_id = %s",
                                                   (TENANTS[1],)).fetchall()}
    assert spec["samples"][TENANTS[0]]["workspaces.note (NULL too)"] == [None]

    saved = workload.Workload.load(wl.save(tmp_path / "workload.yaml"))
    assert [s.query for s in saved.statements] == [s.query for s in wl.statements] and saved.skipped == wl.skipped


def test_statement_invalid_on_the_database_under_test_is_listed(stats_server: Server) -> None:
    dsn = _db(stats_server, stats=True)
    _production(dsn)
    other = _db(stats_server, stats=False)
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("ALTER TABLE synapscale_db.workspaces RENAME COLUMN note TO remark")
    wl = workload.build(workload.read_statements(dsn), other, 0.95, "test")
    reasons = {s.calls: s.reason for s in wl.skipped}
    assert 'column "note" of relation "workspaces" does not exist' in reasons[10], reasons
    assert len(wl.statements) == 2


def test_not_installed_not_loaded_not_readable(stats_server: Server, pg: Server) -> None:
    """Each bad input is one line naming the fix."""
    with pytest.raises(SynapError, match="not installed .* CREATE EXTENSION pg_stat_statements"):
        workload.read_statements(_db(stats_server, stats=False))
    plain = _db(pg, stats=False)  # a server started without shared_preload_libraries
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    with pytest.raises(SynapError, match="not loaded: add it to shared_preload_libraries"):
        workload.read_statements(plain)
    dsn = _db(stats_server, stats=True)
    _production(dsn)
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")  # type: ignore[arg-type]
    reader = psycopg.conninfo.make_conninfo(dsn, user=role)
    with pytest.raises(SynapError, match="GRANT pg_read_all_stats") as err:
        workload.read_statements(reader)
    assert "\n" not in str(err.value)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"GRANT pg_read_all_stats TO {role}")  # type: ignore[arg-type]
    assert len(workload.read_statements(reader)) >= 5  # readable once granted: the check is not a false alarm


def test_references_are_sampled_from_the_tenants_parent_rows(stats_server: Server) -> None:
    """A child row carrying another tenant's workspace (legacy drift) must not lend that workspace to an insert."""
    dsn = _db(stats_server, stats=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE synapscale_db.events (id serial PRIMARY KEY, tenant_id uuid, "
                     "workspace_id uuid REFERENCES synapscale_db.workspaces)")
        foreign = conn.execute("SELECT id::text FROM synapscale_db.workspaces WHERE tenant_id = %s LIMIT 1",
                               (TENANTS[1],)).fetchone()
        assert foreign is not None
        conn.execute("INSERT INTO synapscale_db.events (tenant_id, workspace_id) VALUES (%s, %s)", (TENANTS[0], foreign[0]))
        conn.execute("SELECT pg_stat_statements_reset()")
        for _ in range(5):
            conn.execute("INSERT INTO synapscale_db.events (tenant_id, workspace_id) VALUES (%s, %s)",
                         (TENANTS[0], foreign[0]))
    wl = workload.build(workload.read_statements(dsn), dsn, 1.0, "test")
    (insert,) = [s for s in wl.statements if s.query.startswith("INSERT INTO synapscale_db.events")]
    assert [(p.source, p.column) for p in insert.params] == [("tenant", "tenant_id"), ("written", "workspace_id")]
    spec = workload.prepare_run(wl, dsn, TENANTS)
    own = spec["samples"][TENANTS[0]]["events.workspace_id (NULL too)"]
    with psycopg.connect(dsn) as conn:
        mine = {r[0] for r in conn.execute("SELECT id::text FROM synapscale_db.workspaces WHERE tenant_id = %s",
                                           (TENANTS[0],)).fetchall()}
    assert own and set(own) == mine and foreign[0] not in own
