"""A production workload's statements mapped through the contract, run on real legacy and migrated databases.

The workload file holds statements taken in the old application's names (``llms_messages``, ``meta_data``)
and in the new one's (``messages``, ``metadata``); each must come out in both forms, the legacy form
running on the legacy database and the new form on the migrated one. ``load_notes`` is a table the
contract does not know, with a ``meta_data`` column of its own that no migration renames: the seeded
trap for a mapping by name instead of by scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from synap_verify.contract import Contract
from synap_verify.loadtest import orchestrate, workload
from synap_verify.loadtest.legacymap import Mapper
from synap_verify.loadtest.workload import Statement, Workload
from synap_verify.pipeline import Pipeline

S = "synapscale_db"
NOTES = f"CREATE TABLE {S}.load_notes (id bigint PRIMARY KEY, tenant_id uuid, meta_data text)"
# (statement as taken from pg_stat_statements, its legacy form, its new form): legacy and new names both
MAPPED = [
    (f"INSERT INTO {S}.workflow_executions (execution_id, workflow_id, user_id, tenant_id, status, meta_data) "
     "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, meta_data",
     None,
     f"INSERT INTO {S}.workflow_executions (execution_id, workflow_id, user_id, tenant_id, status, metadata) "
     "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, metadata"),
    (f"SELECT e.id, e.meta_data::text FROM {S}.workflow_executions e JOIN {S}.workflows w ON w.id = e.workflow_id "
     "WHERE w.tenant_id = $1 ORDER BY e.created_at DESC LIMIT $2",
     None,
     f"SELECT e.id, e.metadata::text FROM {S}.workflow_executions e JOIN {S}.workflows w ON w.id = e.workflow_id "
     "WHERE w.tenant_id = $1 ORDER BY e.created_at DESC LIMIT $2"),
    (f"UPDATE {S}.workspace_activities SET meta_data = $1 WHERE id = $2 AND tenant_id = $3",
     None, f"UPDATE {S}.workspace_activities SET metadata = $1 WHERE id = $2 AND tenant_id = $3"),
    (f"SELECT count(*) FROM {S}.llms_conversations_turns WHERE conversation_id = $1",
     None, f"SELECT count(*) FROM {S}.conversation_turns WHERE conversation_id = $1"),
    (f"SELECT {S}.messages.id, {S}.messages.role FROM {S}.messages WHERE {S}.messages.tenant_id = $1 LIMIT $2",
     f"SELECT {S}.llms_messages.id, {S}.llms_messages.role FROM {S}.llms_messages "
     f"WHERE {S}.llms_messages.tenant_id = $1 LIMIT $2", None),
    (f"SELECT f.id, f.rating FROM {S}.message_feedbacks f JOIN {S}.messages m ON m.id = f.message_id "
     "WHERE m.tenant_id = $1 LIMIT $2",
     f"SELECT f.id, f.rating FROM {S}.llms_message_feedbacks f JOIN {S}.llms_messages m ON m.id = f.message_id "
     "WHERE m.tenant_id = $1 LIMIT $2", None),
    (f"SELECT n.id, metadata::text FROM {S}.node_executions n WHERE n.tenant_id = $1 LIMIT $2",
     f"SELECT n.id, meta_data::text FROM {S}.node_executions n WHERE n.tenant_id = $1 LIMIT $2", None),
    # a column of a table the contract does not rename, with the renamed column's name: stays as it is
    (f"SELECT n.meta_data, e.meta_data::text FROM {S}.load_notes n JOIN {S}.workflow_executions e "
     "ON e.tenant_id = n.tenant_id WHERE e.tenant_id = $1 LIMIT $2",
     None,
     f"SELECT n.meta_data, e.metadata::text FROM {S}.load_notes n JOIN {S}.workflow_executions e "
     "ON e.tenant_id = n.tenant_id WHERE e.tenant_id = $1 LIMIT $2"),
]
AMBIGUOUS = (f"SELECT e.id, meta_data FROM {S}.workflow_executions e JOIN {S}.load_notes n ON n.id = e.id "
             "WHERE e.tenant_id = $1")
DROPPED = f"SELECT m.id, m.rating FROM {S}.llms_messages m WHERE m.tenant_id = $1 LIMIT $2"  # rating: dropped
DIRTY = (f"UPDATE {S}.workflow_executions SET meta_data = '{{\"nul\": \"\\u0000\"}}' WHERE id IN "
         f"(SELECT DISTINCT ON (tenant_id) id FROM {S}.workflow_executions ORDER BY tenant_id, id)")


@pytest.fixture(scope="module")
def dbs(pipeline: Pipeline) -> Iterator[tuple[str, str]]:
    """A legacy and a migrated tiny database, each with the contract-less ``load_notes``."""
    legacy, migrated = pipeline.clone("legacy"), pipeline.clone("migrated")
    for db in (legacy, migrated):
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            conn.execute(NOTES)  # type: ignore[arg-type]
    with psycopg.connect(legacy.dsn, autocommit=True) as conn:  # json jsonb refuses, in one execution per tenant
        conn.execute(DIRTY)  # type: ignore[arg-type]
    yield legacy.dsn, migrated.dsn
    legacy.drop()
    migrated.drop()


def _file(tmp_path: Path) -> Path:
    """A workload file as --save-workload writes it."""
    taken = [q for q, _, _ in MAPPED] + [AMBIGUOUS, DROPPED]
    statements = [Statement(f"{i:06d}", q, 100 - i, 0.1) for i, q in enumerate(taken)]
    return Workload("production", 0.95, 1000, 900, statements, []).save(tmp_path / "production.yaml")


def _forms() -> dict[str, tuple[str, str]]:
    return {q: (legacy or q, new or q) for q, legacy, new in MAPPED}


def _run_all(spec: dict[str, Any], dsn: str, tenants: list[str]) -> int:
    """Run every statement of ``spec`` once for the first tenant that has values for it; how many ran."""
    ran = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for s in spec["statements"]:
            tenant = next(t for t in tenants if all(spec["samples"][t].get(p["key"]) for p in s["params"]
                                                   if p["source"] in workload.SAMPLED))
            params = {f"p{p['n']}": workload.value(p, tenant, spec["samples"][tenant], spec, lambda xs: xs[0])
                      for p in s["params"]}
            with conn.transaction(force_rollback=True):
                conn.execute(s["sql"], params)
            ran += 1
    return ran


def test_statements_map_both_ways_and_run_on_both_databases(dbs: tuple[str, str], contract: Contract,
                                                            tmp_path: Path) -> None:
    legacy, migrated = dbs
    saved = Workload.load(_file(tmp_path))
    tenants = [t["tenant"] for t in orchestrate.tenant_pool(legacy, 3)]
    for dsn, other, form in ((legacy, migrated, "legacy"), (migrated, legacy, "new")):
        wl = workload.rebind(saved, dsn, contract, other)
        assert wl.form == form
        assert {s.query: (s.legacy, s.new) for s in wl.statements} == _forms()
        by_query = {s.query: s for s in wl.statements}
        assert by_query[MAPPED[0][0]].mapped == ["workflow_executions.meta_data -> metadata"]
        assert by_query[MAPPED[4][0]].mapped == ["llms_messages -> messages"]
        assert by_query[MAPPED[5][0]].mapped == ["llms_message_feedbacks -> message_feedbacks", "llms_messages -> messages"]
        assert by_query[MAPPED[4][0]].written_in == "new" and by_query[MAPPED[0][0]].written_in == "legacy"
        reasons = {s.query: s.reason for s in wl.skipped}
        assert reasons.keys() == {AMBIGUOUS, DROPPED}
        assert "column meta_data is not qualified and could belong to any of e, n" in reasons[AMBIGUOUS]
        assert 'column m.rating does not exist' in reasons[DROPPED]
        assert ("the new form: not valid on the new database" if form == "legacy" else "not valid on the database under test") \
            in reasons[DROPPED]
    # the legacy forms run on the legacy database, the new forms on the migrated one, with the same values
    wl = workload.rebind(saved, legacy, contract, migrated)
    spec = workload.prepare_run(wl, legacy, tenants)
    assert len(spec["statements"]) == len(MAPPED), wl.skipped
    # json the legacy data holds and jsonb refuses (DIRTY) is not sampled: the new form writes it to jsonb
    with psycopg.connect(legacy) as conn:
        dirty = conn.execute(f"SELECT count(*) FROM {S}.workflow_executions WHERE tenant_id = ANY(%s::uuid[]) "  # type: ignore[arg-type]
                             f"AND meta_data::text ~ {workload.JSONB_REFUSES}", (tenants,)).fetchone()
    sampled = [v for t in tenants for v in spec["samples"][t]["workflow_executions.meta_data (NULL too)"] if v]
    assert dirty and dirty[0] >= len(tenants) and sampled and not any("\\u0000" in v for v in sampled)
    assert _run_all(spec, legacy, tenants) == len(MAPPED)
    assert _run_all(workload.run_spec(wl, spec["samples"], "new"), migrated, tenants) == len(MAPPED)


def test_a_mapping_by_name_is_caught_by_running_it(dbs: tuple[str, str]) -> None:
    """The seeded wrong mapping: every ``meta_data`` renamed, ``load_notes``' own too; the migrated database refuses it."""
    _, migrated = dbs
    taken, _, new = MAPPED[-1]
    by_name = taken.replace("meta_data", "metadata")
    assert by_name != new
    with psycopg.connect(migrated, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn, match="n.metadata does not exist"):
            conn.execute(by_name.replace("$1", "NULL").replace("$2", "1"))  # type: ignore[arg-type]
        conn.execute((new or "").replace("$1", "NULL").replace("$2", "1"))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mapper(dbs: tuple[str, str], contract: Contract) -> Mapper:
    with psycopg.connect(dbs[0]) as conn:
        return Mapper(contract, workload.read_schema(conn))


@pytest.mark.parametrize(("taken", "legacy", "new"), [
    # a subquery's output named by a renamed column follows it outside
    (f"SELECT s.meta_data FROM (SELECT meta_data FROM {S}.node_executions) s",
     None, f"SELECT s.metadata FROM (SELECT metadata FROM {S}.node_executions) s"),
    # a CTE, quoted names, a comment and the layout kept
    (f'WITH q AS (SELECT "meta_data" AS m FROM {S}."workflow_execution_queue") /* keep */\nSELECT m FROM q',
     None, f'WITH q AS (SELECT "metadata" AS m FROM {S}."workflow_execution_queue") /* keep */\nSELECT m FROM q'),
    # a correlated subquery reads the outer table's renamed column; the inner table's own columns are its own
    (f"SELECT a.id FROM {S}.workspace_activities a WHERE EXISTS (SELECT 1 FROM {S}.workspaces w "
     "WHERE w.id = a.workspace_id AND a.meta_data IS NOT NULL)", None,
     f"SELECT a.id FROM {S}.workspace_activities a WHERE EXISTS (SELECT 1 FROM {S}.workspaces w "
     "WHERE w.id = a.workspace_id AND a.metadata IS NOT NULL)"),
    # ON CONFLICT ... SET and excluded.*
    (f"INSERT INTO {S}.node_executions AS n (id, meta_data) VALUES ($1, $2) "
     "ON CONFLICT (id) DO UPDATE SET meta_data = excluded.meta_data RETURNING n.meta_data", None,
     f"INSERT INTO {S}.node_executions AS n (id, metadata) VALUES ($1, $2) "
     "ON CONFLICT (id) DO UPDATE SET metadata = excluded.metadata RETURNING n.metadata"),
    # a whole-row reference to a renamed table named without alias
    (f"SELECT to_jsonb(llms_messages) FROM {S}.llms_messages", None, f"SELECT to_jsonb(messages) FROM {S}.messages"),
    # an alias that happens to be a renamed table's name is only an alias
    (f"SELECT llms_messages.id FROM {S}.workflows llms_messages", None, None),
])
def test_mapping_follows_the_scopes(mapper: Mapper, taken: str, legacy: str | None, new: str | None) -> None:
    forms = mapper.forms(taken)
    assert not forms.reason
    assert (forms.legacy, forms.new) == (legacy or taken, new or taken)
    assert mapper.forms(forms.new).legacy == forms.legacy  # and back


@pytest.mark.parametrize(("taken", "reason"), [
    (AMBIGUOUS, "column meta_data is not qualified and could belong to any of e, n"),
    (f"SELECT meta_data FROM {S}.workflow_executions e, generate_series(1, 2) g",
     "could belong to any of e, g"),  # a function's columns are not known
    (f"SELECT metadata FROM {S}.workflow_executions e JOIN public.elsewhere p ON true", "could belong to any of e, p"),
    (f"SELECT e.id FROM {S}.workflow_executions e JOIN {S}.node_executions n USING (meta_data)",
     "USING (meta_data) names a renamed column"),
    (f"INSERT INTO {S}.node_executions (id, meta_data) VALUES ($1, $2) ON CONFLICT (meta_data) DO NOTHING",
     "ON CONFLICT (meta_data) names a renamed column"),
    ("SELECT FROM WHERE", "does not parse"),
])
def test_an_ambiguous_statement_is_not_mapped(mapper: Mapper, taken: str, reason: str) -> None:
    forms = mapper.forms(taken)
    assert reason in forms.reason and forms.reason.startswith("not mapped through the contract")
    assert (forms.legacy, forms.new) == ("", "")
