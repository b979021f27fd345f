"""The planner on a real PostgreSQL: the legacy fixture plans to the reference's declarations, the migrated
database plans to nothing, a half-migrated start with drift plans only the rest and its generated revisions
reach the contract (and come back down to the start), and a plan that forgets a duplicated FK is caught.

Schema only: nothing here needs rows, so every database is the legacy schema file and what the test does to it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synap_verify import migrate, rls
from synap_verify.catalog import Catalog, read_catalog
from synap_verify.cli import main
from synap_verify.contract import check, load_contract
from synap_verify.contract.model import Contract
from synap_verify.datagen.schema import load_schema_file
from synap_verify.errors import SynapError
from synap_verify.findings import count_by_rule
from synap_verify.integrity import equivalence
from synap_verify.pipeline import Pipeline
from synap_verify.plan import Plan, build_plan
from synap_verify.plan.render import MARK, contract_source, merge_source, revision_source, write_revisions
from synap_verify.resources import GENERIC_CONTRACT, LEGACY_SCHEMA
from synap_verify.server import Server
from synap_verify.server.templates import Database
from synap_verify.settings import Settings
from synapscale.migrations import ops

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "synapscale" / "migrations"
S = "synapscale_db"
# the contract, with a person's answer to the FKs to users it leaves to one (tests only: see docs/plan.md)
DECIDED = """extends: {base}
rules:
  G4:
    defaults:
      - {{column: $tenant_column, action: owned}}
      - {{references: workspaces, action: owned}}
      - {{nullable: true, action: optional}}
      - {{references: users, action: RESTRICT}}
      - {{nullable: false, action: owned}}
"""

_names = iter(range(10_000))


def legacy_db(pg: Server, template: str | None = None) -> str:
    """A fresh database: the legacy schema, or a copy of ``template``."""
    name = f"plan_{next(_names)}"
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    if template is None:
        load_schema_file(pg.dsn(name), LEGACY_SCHEMA)
    return name


def catalog(dsn: str) -> Catalog:
    with psycopg.connect(dsn) as conn:
        return read_catalog(conn)


def catalog_of(dsn: str, contract: Contract) -> Catalog:
    with psycopg.connect(dsn) as conn:
        return read_catalog(conn, contract.schemas)


def sql(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(Settings.contract)


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> Contract:
    path = tmp_path_factory.mktemp("contract") / "decided.yaml"
    path.write_text(DECIDED.format(base=Settings.contract))
    return load_contract(path)


@pytest.fixture(scope="module")
def unmoved(tmp_path_factory: pytest.TempPathFactory) -> Contract:
    """The contract without its hand-written moves: what they settle is left to a person (PLAN-MANUAL)."""
    path = tmp_path_factory.mktemp("contract") / "unmoved.yaml"
    path.write_text(f"extends: {Settings.contract}\nmoves: null\n")
    return load_contract(path)


@pytest.fixture(scope="module")
def legacy(pg: Server) -> str:
    """The legacy schema, never changed: a template for the tests that change a copy."""
    return legacy_db(pg)


@pytest.fixture(scope="module")
def filled() -> Iterator[Pipeline]:
    """A pipeline whose legacy state has generated rows (scale tiny), for the tests that compare data.

    Without the run's state cache: a state stored here would reach later plugin sessions of the run as
    cached, without the load report they describe (tests/test_report.py reads it)."""
    pipeline = Pipeline.start(Settings.resolve({"scale": "tiny", "cache": "off"}), say=lambda _: None)
    yield pipeline
    pipeline.stop()


@pytest.fixture(autouse=True)
def archive_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNAPSCALE_ARCHIVE_DIR", str(tmp_path / "archive"))


def reference_groups() -> dict[str, ModuleType]:
    out = {}
    for path in sorted((REFERENCE / "versions").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"reference_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if module.branch_labels:
            out[module.branch_labels[0]] = module
    return out


# --------------------------------------------------------------------------------------------------
# the legacy fixture plans to what the hand-written revisions declare


def normal(c: ops.Counter) -> tuple:
    """A counter with its assignments order-free (the contract lists them in another order than the reference)."""
    return c.parent, c.child, c.fk, frozenset(c.assignments), frozenset(c.watch)


def test_legacy_fixture_plans_the_reference_declarations(pg: Server, legacy: str, contract: Contract) -> None:
    """Nothing is left to a person: the FK judgement calls are contract statements and the data moves are the files
    the contract names; the reference revisions declare exactly the plan, the moves' fields added."""
    plan = build_plan(catalog(pg.dsn(legacy)), contract)
    reference = reference_groups()
    assert [g.group for g in plan.groups] == list(reference)  # the spec's group order
    assert plan.findings == []
    assert {g.group: g.moves.file for g in plan.groups if g.moves} == {
        g: f"moves/{g}.py" for g in ("rbac", "workflows", "llm", "marketplace", "users")}
    for g in plan.groups:
        ref = getattr(reference[g.group], "GROUP", ops.Group(()))
        moves = getattr(reference[g.group], "MOVES", None)
        assert ref.tables == (moves.declare(g.tables) if moves else g.tables), g.group
        assert (set(ref.gin), {normal(c) for c in ref.counters}) == (set(g.gin), {normal(c) for c in g.counters}), g.group
    assert plan.group("backup").archive == reference["backup"].ARCHIVE  # type: ignore[union-attr]
    assert sum(len(t.fks) for g in plan.groups for t in g.tables) == 249  # plan_provider_mappings' new tenant FK included
    assert sum(len(g.counters) for g in plan.groups) == 15
    llm = {t.name: t for t in reference["llm"].GROUP.tables}
    assert llm["agents"].kept == (("model_provider", "provider"),) and llm["messages"].legacy_columns  # the moves' fields
    # the legacy RLS is frozen as it is, so the downgrade restores it without a hand-written template
    workspaces = next(t for t in plan.group("workspaces").tables if t.name == "workspaces")  # type: ignore[union-attr]
    assert workspaces.legacy_rls == "enabled" and [p.name for p in workspaces.legacy_policies] == ["workspaces_tenant_isolation"]
    billing = {t.name: t for t in plan.group("billing").tables}  # type: ignore[union-attr]
    assert billing["billing_events"].legacy_rls == "enabled" and not billing["billing_events"].legacy_policies


def test_without_its_moves_the_contract_leaves_the_data_moves_to_a_person(pg: Server, legacy: str,
                                                                          contract: Contract) -> None:
    """Seeded: the same contract without `moves:`: each data move is a PLAN-MANUAL finding again, in the groups that
    have one; and a moves file the migrations folder lacks is a one-line error, not a revision that fails mid-run."""
    plan = build_plan(catalog(pg.dsn(legacy)), dataclasses.replace(contract, moves={}))
    assert {f.group for f in plan.findings} == {"rbac", "workflows", "llm", "marketplace", "users"}
    assert len(plan.findings) == 14 and not [f for f in plan.findings if f.constraint]
    assert all(g.moves is None for g in plan.groups)
    elsewhere = dataclasses.replace(contract, moves={"users": dataclasses.replace(contract.moves["users"], file="moves/mine.py")})
    with pytest.raises(SynapError, match=r"^the contract's moves for users are in moves/mine\.py, which is not in .*: write "
                                         r"them there"):
        write_revisions(build_plan(catalog(pg.dsn(legacy)), elsewhere, ["users"]), Path(tempfile.mkdtemp()), "the test")


GENERATED_ORIGIN = "the legacy fixture against contract.yaml"  # what `synap-verify plan` (no --dsn) writes


def stale(path: Path, plan: Plan) -> list[str]:
    """The diff between a generated reference revision and what the plan writes for it now."""
    if path.stem == "9900_merge":
        text = merge_source(g.group for g in plan.groups if not g.empty)
    elif path.stem == "9950_contract":
        text = contract_source(plan)
    else:
        group = plan.group(path.stem.split("_", 1)[1])
        assert group is not None, path.name
        text = revision_source(group, GENERATED_ORIGIN)
    return list(difflib.unified_diff(path.read_text().splitlines(), text.splitlines(), path.name, "planned", lineterm="",
                                     n=0))


def test_generated_reference_revisions_are_the_plans_output(pg: Server, legacy: str, contract: Contract) -> None:
    """Every reference revision but the foundation is the planner's output, byte for byte: a change of the contract,
    the planner or the legacy fixture that would change one fails here until it is regenerated."""
    plan = build_plan(catalog(pg.dsn(legacy)), contract)
    revisions = sorted((REFERENCE / "versions").glob("*.py"))
    generated = [p for p in revisions if MARK in p.read_text()[:200]]
    assert [p.stem for p in revisions if p not in generated] == ["0000_foundation"]
    assert len(generated) == 17  # 15 groups, the switch and the contract
    for path in generated:
        diff = stale(path, plan)
        assert not diff, (f"{path.name} is stale: `synap-verify plan --out DIR`, then copy DIR/versions/{path.name} "
                          "over it\n" + "\n".join(diff[:20]))
    # seeded: legacy drift the file does not know (a constraint under another name) makes it stale
    drifted = pg.dsn(legacy_db(pg, template=legacy))
    sql(drifted, f"ALTER TABLE {S}.contacts RENAME CONSTRAINT contacts_source_id_fkey TO contacts_source_fk")
    diff = stale(REFERENCE / "versions" / "1500_contacts.py", build_plan(catalog(drifted), contract, ["contacts"]))
    assert [line for line in diff if line[0] in "+-" and "source_id" in line] == [
        '-            Fk("source_id", "contact_sources", SET_NULL, "contacts_source_id_fkey:a"),',
        '+            Fk("source_id", "contact_sources", SET_NULL, "contacts_source_fk:a"),']


def test_a_global_table_gains_its_tenant_column_only_when_the_tenants_table_is_plain(pg: Server, legacy: str,
                                                                                     contract: Contract) -> None:
    """``tenant: nullable`` without the column: added nullable (NULL = global) with an FK to the one table every
    tenant column references; when those FKs disagree, which table holds the tenants is a person's call."""
    plan = build_plan(catalog(pg.dsn(legacy)), contract, ["core"])
    core = plan.group("core")
    assert core is not None and not plan.findings
    mappings = next(t for t in core.tables if t.name == "plan_provider_mappings")
    assert (mappings.tenant, mappings.tenant_added) == (ops.GLOBAL, True)
    assert ops.Fk("tenant_id", "tenants", ops.CASCADE, "") in mappings.fks
    drifted = pg.dsn(legacy_db(pg, template=legacy))
    sql(drifted, f"ALTER TABLE {S}.contacts ADD CONSTRAINT contacts_tenant_user FOREIGN KEY (tenant_id) "
                 f"REFERENCES {S}.users NOT VALID")
    plan = build_plan(catalog(drifted), contract, ["core"])
    assert [(f.rule, f.table) for f in plan.findings] == [("PLAN-MANUAL", "plan_provider_mappings")]
    assert "has no tenant_id" in plan.findings[0].message


def test_a_tenant_key_is_planned_only_where_the_columns_fk_cascades(pg: Server, legacy: str, contract: Contract) -> None:
    """A composite (column, tenant) FK deletes what it references; over a SET NULL column it would delete the rows
    the column's own FK keeps, so such a stated tenant key stays a guard trigger."""
    events = contract.tables["analytics_events"]
    stated = dataclasses.replace(contract, tables={**contract.tables, "analytics_events": dataclasses.replace(
        events, tenant_keys=("workspace_id", "workflow_id"))})
    group = build_plan(catalog(pg.dsn(legacy)), stated, ["analytics"]).group("analytics")
    assert group is not None
    planned = next(t for t in group.tables if t.name == "analytics_events")
    assert dict(planned.parents).keys() >= {"workspace_id", "workflow_id"}  # both guarded ...
    assert planned.tenant_keys == ("workspace_id",)  # ... workflow_id (SET NULL) by its trigger


def test_generated_revision_file_carries_the_plan(pg: Server, legacy: str, contract: Contract, tmp_path: Path) -> None:
    """What a file says is what was planned: the rendered declarations read back equal to the plan's."""
    plan = build_plan(catalog(pg.dsn(legacy)), contract, ["workspaces", "llm"])
    written = write_revisions(plan, tmp_path, "the test")
    assert [p.name for p in written] == ["0100_llm.py", "0200_workspaces.py", "9900_merge.py", "9950_contract.py"]
    for path, group in zip(written, plan.groups, strict=False):
        spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        tables = module.MOVES.declare(group.tables) if group.moves else group.tables  # the moves' fields added
        assert (tables, group.counters, group.gin, f"{group.group}_1") == (
            module.TABLES, module.COUNTERS, module.GIN, module.revision)
        words = " ".join(path.read_text().split())  # the docstring's lines are wrapped at the project's width
        assert all(" ".join(f.message.split()) in words for f in group.manual)  # the manual items are in the docstring
    assert (tmp_path / "moves" / "llm.py").read_text() == (REFERENCE / "moves" / "llm.py").read_text()  # copied, as env.py
    assert migrate.single_head(tmp_path) == "restructured"
    assert 'EXPANDS = ("llm_1", "workspaces_1")' in written[-1].read_text()  # both rename: the contract removes the old names
    # planning again into the same folder replaces the earlier plan's files, and only those
    (tmp_path / "versions" / "0500_mine.py").write_text('"""a revision of my own"""\n')
    write_revisions(build_plan(catalog(pg.dsn(legacy)), contract, ["contacts"]), tmp_path, "the test")
    assert sorted(p.name for p in (tmp_path / "versions").glob("*.py")) == [
        "0000_foundation.py", "0100_contacts.py", "0500_mine.py", "9900_merge.py", "9950_contract.py"]


# --------------------------------------------------------------------------------------------------
# nothing to do on the migrated database


def test_migrated_database_plans_to_nothing(pg: Server, legacy: str, contract: Contract) -> None:
    dsn = pg.dsn(legacy_db(pg, template=legacy))
    migrate.upgrade(dsn, REFERENCE, ["heads"])
    plan = build_plan(catalog(dsn), contract)
    assert plan.empty, [(g.group, [t.name for t in g.tables], g.gin, g.archive, g.manual) for g in plan.groups if
                        not g.empty or g.manual]


# --------------------------------------------------------------------------------------------------
# a half-migrated start with drift


DRIFT = (
    # an FK already CASCADE under another name
    f"ALTER TABLE {S}.contact_notes DROP CONSTRAINT contact_notes_contact_id_fkey, ADD CONSTRAINT notes_owner "
    f"FOREIGN KEY (contact_id) REFERENCES {S}.contacts (id) ON DELETE CASCADE",
    # a duplicate FK under another name
    f"ALTER TABLE {S}.campaign_contacts ADD CONSTRAINT fk_campaign FOREIGN KEY (campaign_id) REFERENCES {S}.campaigns (id)",
    # a column already jsonb
    f"ALTER TABLE {S}.template_collections ALTER COLUMN tags TYPE jsonb USING tags::jsonb",
    # a policy already present (RLS on, not forced, SELECT only)
    f"ALTER TABLE {S}.contact_tags ENABLE ROW LEVEL SECURITY",
    f"CREATE POLICY contact_tags_read ON {S}.contact_tags FOR SELECT USING (tenant_id = {S}.current_tenant_id())",
    # RLS enabled and forced, no policy at all (the owner sees nothing either)
    f"ALTER TABLE {S}.contact_events ENABLE ROW LEVEL SECURITY",
    f"ALTER TABLE {S}.contact_events FORCE ROW LEVEL SECURITY",
)
HALF = ["analytics", "templates", "contacts"]


@pytest.fixture(scope="module")
def half_migrated(pg: Server, legacy: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """analytics applied by the reference, then drift by hand in templates and contacts; no Alembic history
    left (as on a database restructured by other means)."""
    name = legacy_db(pg, template=legacy)
    dsn = pg.dsn(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNAPSCALE_ARCHIVE_DIR", str(tmp_path_factory.mktemp("archive")))
        migrate.upgrade(dsn, REFERENCE, ["analytics"])
    sql(dsn, *DRIFT, f"DROP TABLE {S}.alembic_version")
    return name


def structure(cat: Catalog) -> dict[str, tuple]:
    """What a revision changes on a table, names included: columns, FKs, RLS flags, policies, triggers."""
    return {t.name: (sorted((c.name, c.type, c.nullable, c.default) for c in t.columns),
                     sorted((fk.name, fk.columns, fk.target_table, fk.on_delete) for fk in t.foreign_keys),
                     (t.rls_enabled, t.rls_forced), sorted((p.name, p.command, p.using, p.with_check) for p in t.policies),
                     sorted(t.triggers), sorted((i.name, i.columns) for i in t.indexes))
            for t in cat.tables.values() if t.name != "alembic_version"}


def test_half_migrated_start_plans_only_the_rest(pg: Server, half_migrated: str, decided: Contract) -> None:
    plan = build_plan(catalog(pg.dsn(half_migrated)), decided, HALF)
    assert plan.group("analytics").empty and not plan.group("analytics").manual  # type: ignore[union-attr]
    tables = {t.name: t for g in plan.groups for t in g.tables}
    assert "contact_id" not in {fk.column for fk in tables["contact_notes"].fks}  # right under another name
    dup = next(fk for fk in tables["campaign_contacts"].fks if fk.column == "campaign_id")
    assert dup == ops.Fk("campaign_id", "campaigns", ops.CASCADE, "campaign_contacts_campaign_id_fkey:a fk_campaign:a")
    assert tables["template_collections"].json == ("template_ids",)  # tags is jsonb already
    assert tables["contact_tags"].legacy_rls == "enabled"
    assert [p.name for p in tables["contact_tags"].legacy_policies] == ["contact_tags_read"]
    assert (tables["contact_events"].legacy_rls, tables["contact_events"].legacy_policies) == ("forced", ())
    assert not plan.findings


def test_generated_revisions_reach_the_contract_and_come_back(pg: Server, half_migrated: str, decided: Contract,
                                                              tmp_path: Path) -> None:
    dsn = pg.dsn(legacy_db(pg, template=half_migrated))
    start = catalog(dsn)
    plan = build_plan(start, decided, HALF)
    write_revisions(plan, tmp_path, "the test")
    assert check(start, decided, HALF)  # there was something to do
    migrate.upgrade(dsn, tmp_path, ["heads"])
    after = catalog(dsn)
    assert check(after, decided, HALF) == []
    assert build_plan(after, decided, HALF).empty
    migrate.downgrade(dsn, tmp_path, "foundation")
    assert structure(catalog(dsn)) == structure(start)


def test_a_half_migrated_copy_with_rows_migrates_without_loss_or_leak(filled: Pipeline, decided: Contract,
                                                                      tmp_path: Path) -> None:
    """The same start with generated rows: nothing lost against the legacy rows, no cross-tenant leak."""
    from synap_verify import rls

    before, work = filled.clone("legacy"), filled.clone("legacy")
    try:
        migrate.upgrade(work.dsn, REFERENCE, ["analytics"])
        sql(work.dsn, *DRIFT, f"DROP TABLE {S}.alembic_version")
        write_revisions(build_plan(work.catalog(), decided, HALF), tmp_path, "the test")
        migrate.upgrade(work.dsn, tmp_path, ["heads"])
        assert check(work.catalog(), decided, HALF) == []
        compared = equivalence.run(before.dsn, work.dsn, decided, HALF)
        probes = rls.setup(decided.path)
        leaks = [f for f in rls.check(work, probes.config, probes.groups).findings if f.group in HALF]
    finally:
        before.drop()
        work.drop()
    assert compared.findings == [] and compared.rows > 1000
    assert leaks == []


def test_a_plan_that_keeps_a_duplicate_fk_is_caught_by_the_contract(pg: Server, half_migrated: str,
                                                                     decided: Contract, tmp_path: Path) -> None:
    """Seeded defect: the planner matched FKs by name, so it missed ``fk_campaign`` (the same FK under another
    name); the revisions apply, and the contract reports the duplicate that is left."""
    dsn = pg.dsn(legacy_db(pg, template=half_migrated))
    plan = build_plan(catalog(dsn), decided, ["contacts"])
    contacts = plan.groups[0]
    by_name = tuple(dataclasses.replace(t, fks=tuple(dataclasses.replace(fk, legacy=" ".join(
        item for item in fk.legacy.split() if item.startswith(t.name))) for fk in t.fks)) for t in contacts.tables)
    write_revisions(Plan((dataclasses.replace(contacts, tables=by_name),)), tmp_path, "a seeded defect")
    migrate.upgrade(dsn, tmp_path, ["heads"])
    g4 = [f for f in check(catalog(dsn), decided, ["contacts"]) if f.rule == "G4"]
    assert [(f.table, f.column) for f in g4] == [("campaign_contacts", "campaign_id")]
    assert "2 conflicting FK constraints (campaign_contacts_campaign_id_fkey CASCADE, fk_campaign NO ACTION)" in g4[0].message


# --------------------------------------------------------------------------------------------------
# the command


def test_plan_command_dry_run_states_sql_lock_and_rows(pg: Server, legacy: str, unmoved: Contract,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    name = legacy_db(pg, template=legacy)
    dsn = pg.dsn(name)
    sql(dsn, f"INSERT INTO {S}.contact_sources (name) SELECT 'source ' || i FROM generate_series(1, 40) i",
        f"ANALYZE {S}.contact_sources")
    assert main(["plan", "--dsn", dsn, "--group", "workflows", "--dry-run"]) == 0  # the contract names the move
    out, err = capsys.readouterr()
    assert "  workflows: data moves by hand (moves/workflows.py)\n    sql:  moves/workflows.py: MOVES.up(GROUP), settling " \
           "workflows.workspace_id\n" in out and "0 PLAN-MANUAL finding(s)" in err
    assert main(["plan", "--dsn", dsn, "--contract", str(unmoved.path), "--group", "contacts,workflows", "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "data moves by hand" not in out
    # a NOT NULL whose NULLs need values is left to a person; a nullable FK to users is SET NULL by the G4 defaults
    assert "[PLAN-MANUAL] workflows/workflows: the contract does not say how to fix: workflows.workspace_id must be " \
           "NOT NULL (T-NULL)" in out
    assert "[PLAN-MANUAL] contacts/campaigns: campaigns.created_by" not in out  # nullable: SET NULL by the defaults
    assert "[PLAN-MANUAL] contacts/contact_notes: contact_notes.author_id" not in out
    step = out[out.index("contact_sources: G2 timestamptz"):].splitlines()[:4]
    assert step[1].strip().startswith(f'sql:  ALTER TABLE {S}."contact_sources" ALTER COLUMN "created_at" TYPE timestamptz')
    assert step[2].strip().startswith("lock: ACCESS EXCLUSIVE")
    assert step[3].strip() == "rows: indexes re-read ~40 rows (reltuples)"
    fk = out[out.index("\n  contacts: G4 FK tenant_id -> tenants ON DELETE CASCADE") + 1:].splitlines()[:4]
    assert "ACCESS EXCLUSIVE on contacts and tenants" in fk[2]
    assert "0 group(s)" not in err and "PLAN-MANUAL finding(s)" in err
    assert "password" not in out + err


def test_plan_command_exits_0_when_everything_is_planned(pg: Server, legacy: str, decided: Contract, unmoved: Contract,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "migrations"
    assert main(["plan", "--dsn", pg.dsn(legacy), "--contract", str(decided.path), "--group", "contacts",
                 "--out", str(out_dir)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("contacts") and "0 manual" in out and "wrote 3 file(s)" in err
    assert sorted(p.name for p in (out_dir / "versions").iterdir() if p.suffix == ".py") == [
        "0000_foundation.py", "0100_contacts.py", "9900_merge.py", "9950_contract.py"]
    # machine formats: the findings alone on stdout, the summary on stderr
    assert main(["plan", "--dsn", pg.dsn(legacy), "--contract", str(unmoved.path), "--group", "workflows", "--format",
                 "json"]) == 1
    out, err = capsys.readouterr()
    found = json.loads(out)
    assert [f["rule"] for f in found] == ["PLAN-MANUAL"] and err.startswith("workflows")


def test_plan_command_without_dsn_plans_the_legacy_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--group", "contacts"]) == 0  # its FKs to users are nullable: SET NULL by the defaults
    out, err = capsys.readouterr()
    assert out.startswith("contacts      10 tables: 25 FK") and "0 PLAN-MANUAL finding(s)" in err


def test_plan_command_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["plan", "--out", str(a_file), "--dsn", "postgresql://nobody@127.0.0.1:1/x"]) == 2
    assert "is a file: give a folder" in capsys.readouterr().err
    assert main(["plan", "--group", "analytic"]) == 2
    assert "did you mean 'analytics'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# the contract's new keys


@pytest.mark.parametrize(("body", "message"), [
    ("rules: {G4: {defaults: {action: CASCADE}}}", "expected a list of {action, column, references, nullable}"),
    ("rules: {G4: {defaults: [{column: x}]}}", "expected 'action: <ON DELETE action, class or manual>'"),
    ("rules: {G4: {defaults: [{action: DELETE}]}}", "DELETE"),
    ("unlisted: {tenant: required}", "expected 'group: <group>'"),
    ("unlisted: {group: nope}", "nope"),
    ("moves: {users: {file: moves/users.py, settles: [users.tenant_id]}}", "unknown group of the contract 'users'"),
    ("moves: {rbac: {file: moves/rbac.py}}", "expected 'file: <path in the migrations folder>' and 'settles:"),
    ("moves: {rbac: {file: /etc/rbac.py, settles: [rbac_roles.scope]}}", "expected a .py file inside the migrations folder"),
    ("moves: {rbac: {file: ../rbac.py, settles: [rbac_roles.scope]}}", "expected a .py file inside the migrations folder"),
    ("moves: {rbac: {file: moves/rbac.py, settles: [rbac_roles]}}", "expected <table>.<column> of a table of group 'rbac'"),
    ("moves: {rbac: {file: moves/rbac.py, settles: [users.tenant_id]}}", "got 'users.tenant_id'"),
])
def test_contract_keys_of_the_planner_fail_in_one_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"version: 1\n{body}\ngroups: {{rbac: {{rbac_roles: {{}}}}, other: {{users: {{}}}}}}\n")
    with pytest.raises(SynapError, match=r"c\.yaml:\d+: ") as caught:
        load_contract(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# --------------------------------------------------------------------------------------------------
# the generic contract: the global rules only, any table, a configurable tenant column


def test_generic_contract_judges_every_table_of_the_legacy_fixture(pg: Server, legacy: str) -> None:
    generic = load_contract(GENERIC_CONTRACT)
    assert not generic.tables and generic.unlisted is not None
    cat = catalog(pg.dsn(legacy))
    findings = check(cat, generic)
    judged = {f.table for f in findings if f.rule != "G9"}
    backups = {n for n in cat.tables if n.startswith("backup_")}
    assert judged == set(cat.tables) - backups - {"alembic_version"}  # every table has something to fix
    assert {f.table for f in findings if f.rule == "G9"} == backups
    # only tables that carry tenant_id are tenant tables: tenants and the shared catalogues are not judged by G5
    assert {f.table for f in findings if f.rule == "G5"} == {n for n, t in cat.tables.items()
                                                             if t.column("tenant_id") and n not in backups}
    plan = build_plan(cat, generic)
    assert [g.group for g in plan.groups] == ["backup", "other"]
    other = plan.group("other")
    assert other is not None and len(other.tables) == len(judged)
    # without per-table statements, a NOT NULL FK to anything but the tenant is a person's call
    assert all(f.constraint for f in other.manual if "ON DELETE" in f.message)


def test_generic_contract_with_another_tenant_column(pg: Server, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A schema of its own, multi-tenant by organization_id: the contract extends the generic one."""
    name = f"plan_{next(_names)}"
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg.dsn(name)
    sql(dsn, f"CREATE SCHEMA {S}",
        f"CREATE TABLE {S}.organizations (id uuid PRIMARY KEY, name text NOT NULL)",
        f"CREATE TABLE {S}.projects (id uuid PRIMARY KEY, organization_id uuid NOT NULL REFERENCES {S}.organizations, "
        "settings json, created_at timestamp)",
        f"CREATE TABLE {S}.tasks (id uuid PRIMARY KEY, organization_id uuid REFERENCES {S}.organizations, "
        f"project_id uuid NOT NULL REFERENCES {S}.projects, reviewer_id uuid REFERENCES {S}.projects)")
    path = tmp_path / "orgs.yaml"
    path.write_text(f"extends: {GENERIC_CONTRACT}\nrules:\n  G5: {{tenant_column: organization_id}}\n")
    contract = load_contract(path)
    cat = catalog(dsn)
    g5 = {(f.table, f.column) for f in check(cat, contract) if f.rule == "G5"}
    assert {t for t, _ in g5} == {"projects", "tasks"} and ("tasks", "organization_id") in g5  # nullable there
    plan = build_plan(cat, contract)
    tables = {t.name: t for t in plan.group("other").tables}  # type: ignore[union-attr]
    assert tables["projects"].json == ("settings",) and tables["projects"].timestamps == ("created_at",)
    fks = {(t, fk.column): fk.on_delete for t, d in tables.items() for fk in d.fks}
    assert fks == {("projects", "organization_id"): "CASCADE", ("tasks", "organization_id"): "CASCADE",
                   ("tasks", "reviewer_id"): "SET NULL"}  # $tenant_column and nullable defaults
    manual = [f.message for f in plan.findings]
    assert any("tasks.project_id → projects" in m and "a person decides" in m for m in manual)
    # the ops engine works on the contract's tenant column: RLS and guards planned on organization_id
    assert plan.target == ops.Target(S, "organization_id", "app.current_tenant_id")
    assert tables["tasks"].tenant == ops.REQUIRED and not tables["tasks"].tenant_was_not_null
    assert tables["tasks"].parents == (("project_id", "projects"), ("reviewer_id", "projects"))
    # the same from the command line, the tenant column given as an option instead of a contract of one's own
    assert main(["plan", "--dsn", dsn, "--contract", str(GENERIC_CONTRACT), "--tenant-column", "organization_id"]) == 1
    assert "[PLAN-MANUAL] other/tasks: tasks.project_id → projects" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# any half-migrated start: a seeded property


# three of them with hand-written moves (a list into rows, a column kept in sync by triggers, NULLs re-homed) and
# two whose reference revisions keep old names until the contract (an expand state the plan finishes)
SPREAD = ["rbac", "workflows", "analytics", "metrics", "templates", "other", "contacts", "marketplace"]
DRIFTS = {"fk_cascade_elsewhere": DRIFT[:1], "duplicate_fk": DRIFT[1:2], "already_jsonb": DRIFT[2:3],
          "policy_present": DRIFT[3:5], "forced_without_policy": DRIFT[5:]}


@settings(max_examples=4, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(applied=st.lists(st.sampled_from(SPREAD), unique=True, max_size=3),
       drift=st.lists(st.sampled_from(sorted(DRIFTS)), unique=True, min_size=1))
def test_any_half_migrated_start_converges_and_comes_back(pg: Server, legacy: str, decided: Contract,
                                                          applied: list[str], drift: list[str]) -> None:
    """Some groups applied by the reference (expanded, not contracted), some drift by hand, no Alembic history: the
    plan migrates the rest and contracts what the expand left, to 0 contract findings, plans nothing afterwards, and
    the downgrade restores the start exactly."""
    dsn = pg.dsn(legacy_db(pg, template=legacy))
    migrate.upgrade(dsn, REFERENCE, ["foundation", *applied])
    sql(dsn, *(s for name in drift for s in DRIFTS[name]), f"DROP TABLE {S}.alembic_version")
    start = catalog(dsn)
    plan = build_plan(start, decided, SPREAD)
    assert not plan.findings
    assert all(plan.group(g).empty for g in applied if g not in ("templates", "contacts")), applied  # type: ignore[union-attr]
    out = Path(tempfile.mkdtemp(prefix="synap-plan-"))
    try:
        write_revisions(plan, out, "a seeded half-migrated start")
        migrate.upgrade(dsn, out, ["heads"])
        after = catalog(dsn)
        assert check(after, decided, SPREAD) == []
        assert build_plan(after, decided, SPREAD).empty
        migrate.downgrade(dsn, out, "foundation")
    finally:
        shutil.rmtree(out)
    assert structure(catalog(dsn)) == structure(start)


def test_a_database_at_the_switch_point_plans_only_the_contract(pg: Server, legacy: str, contract: Contract,
                                                                unmoved: Contract, tmp_path: Path) -> None:
    """Every group expanded by the reference (old names, compatibility views, kept and carried columns, fill
    triggers), the history gone: no group revision is planned, the contract revision removes what the expands left
    (the moves files give the carried and filled columns), and its downgrade brings the switch point back."""
    dsn = pg.dsn(legacy_db(pg, template=legacy))
    migrate.upgrade(dsn, REFERENCE, ["expanded"])
    sql(dsn, f"DROP TABLE {S}.alembic_version")
    start = catalog(dsn)
    plan = build_plan(start, contract)
    assert not plan.findings and all(g.empty for g in plan.groups)
    left = {g.group: sorted(t.name for t in g.contracted) for g in plan.groups if g.contracted}
    assert left == {"rbac": ["rbac_permissions", "rbac_roles"], "workflows": ["workflow_executions"],
                    "llm": ["agents", "conversation_turns", "message_feedbacks", "messages"],
                    "marketplace": ["marketplace_components"], "users": ["users"],
                    "workspaces": ["workspace_activities"], "nodes": ["node_executions", "workflow_execution_queue"]}, left
    # without the moves files the carried and filled columns cannot be contracted: a person's, not a guess
    assert sorted((f.group, f.table) for f in build_plan(start, unmoved).findings) == [
        ("marketplace", "marketplace_components"), ("rbac", "rbac_permissions"), ("rbac", "rbac_roles"),
        ("users", "users")]
    write_revisions(plan, tmp_path, "the test")
    assert [p.name for p in sorted((tmp_path / "versions").glob("*.py"))] == [
        "0000_foundation.py", "9900_merge.py", "9950_contract.py"]
    migrate.upgrade(dsn, tmp_path, ["heads"])
    assert check(catalog(dsn), contract) == []
    assert build_plan(catalog(dsn), contract).empty
    migrate.downgrade(dsn, tmp_path, "foundation")
    back = catalog(dsn)
    assert structure(back) == structure(start)
    # the compatibility views answer as before, llms_messages' rating and feedback read from message_feedbacks
    assert {v.name: v.definition for v in back.views} == {v.name: v.definition for v in start.views}


ORGS = ["CREATE TABLE public.organizations (id uuid PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE public.projects (id uuid PRIMARY KEY, organization_id uuid NOT NULL REFERENCES public.organizations, "
        "name text NOT NULL, settings json, created_at timestamp)",
        "CREATE TABLE public.tasks (id uuid PRIMARY KEY, organization_id uuid REFERENCES public.organizations, "
        "project_id uuid REFERENCES public.projects, title text)",
        "CREATE TABLE public.events (id uuid NOT NULL, organization_id uuid NOT NULL REFERENCES public.organizations, "
        "at timestamptz NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
        "CREATE TABLE public.events_default PARTITION OF public.events DEFAULT",
        "CREATE VIEW public.project_names AS SELECT p.id, p.name, p.created_at FROM public.projects p",
        "INSERT INTO public.organizations SELECT ('00000000-0000-0000-0000-00000000000' || i)::uuid, 'org ' || i "
        "FROM generate_series(1, 2) i",
        "INSERT INTO public.projects SELECT gen_random_uuid(), o.id, 'p' || i, '{\"a\": 1}', '2024-01-01' "
        "FROM public.organizations o, generate_series(1, 3) i",
        "INSERT INTO public.tasks SELECT gen_random_uuid(), NULL, p.id, 't' || i FROM public.projects p, "
        "generate_series(1, 2) i",  # the tenant comes from the project
        "INSERT INTO public.events SELECT gen_random_uuid(), o.id, now() FROM public.organizations o, generate_series(1, 3)"]
ORG_CONTRACT = """extends: {base}
schemas: [public]
rules:
  G5: {{tenant_column: organization_id, tenant_settings: [app.current_organization_id]}}
"""


def test_another_schema_and_tenant_column_are_the_revisions_target(pg: Server, tmp_path: Path) -> None:
    """A database in public, multi-tenant by organization_id read from app.current_organization_id: the planned
    revisions run there (env.py's target), reach the contract, keep every row, isolate tenants on the tables, their
    partitions and views; a policy broken on one table of that schema is caught by the probes, a lost row by
    equivalence; the downgrade gives back the start."""
    name = f"plan_{next(_names)}"
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg.dsn(name)
    sql(dsn, *ORGS)
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}_before TEMPLATE {name}")
    path = tmp_path / "orgs.yaml"
    path.write_text(ORG_CONTRACT.format(base=GENERIC_CONTRACT))
    contract = load_contract(path)
    start = catalog_of(dsn, contract)
    plan = build_plan(start, contract)
    assert plan.target == ops.Target("public", "organization_id", "app.current_organization_id")
    assert not plan.findings and plan.group("other").views == ("project_names",)  # type: ignore[union-attr]
    out = tmp_path / "migrations"
    write_revisions(plan, out, "a public schema")
    assert "TARGET = ops.Target(schema='public', tenant_column='organization_id', " \
           "tenant_setting='app.current_organization_id')" in (out / "env.py").read_text()
    migrate.upgrade(dsn, out, ["heads"])
    after = catalog_of(dsn, contract)
    assert check(after, contract) == [] and build_plan(after, contract).empty
    assert after.table("alembic_version") and after.table("migration_quarantine")  # in the target's schema
    policy = next(p for p in after.tables["events_default"].policies if p.command == "SELECT")
    assert "current_setting('app.current_organization_id'" in str(policy.using)
    assert [v.security_invoker for v in after.views] == [True]
    assert equivalence.run(pg.dsn(f"{name}_before"), dsn, contract).findings == []
    probes = rls.from_contract(contract.covering(after))
    assert rls.check(Database(pg, name), probes.config, probes.groups).findings == []
    # seeded: one table's policy lets every tenant through; one task row lost
    sql(dsn, "ALTER POLICY projects_tenant_select ON public.projects USING (true)",
        "DELETE FROM public.tasks WHERE ctid = (SELECT min(ctid) FROM public.tasks)")
    leaks = {(f.rule, f.table) for f in rls.check(Database(pg, name), probes.config, probes.groups).findings}
    assert ("PROBE-SELECT", "projects") in leaks and ("RLS006", "projects") in leaks
    assert {t for _, t in leaks} == {"projects", "project_names"}  # the view reads it with the reader's rights
    lost = equivalence.run(pg.dsn(f"{name}_before"), dsn, contract).findings
    assert [(f.rule, f.table) for f in lost] == [("EQ-ROWS", "tasks")]
    sql(dsn, "ALTER POLICY projects_tenant_select ON public.projects USING (organization_id = "
        "NULLIF(current_setting('app.current_organization_id', true), '')::uuid)")
    migrate.downgrade(dsn, out, "foundation")
    back = catalog_of(dsn, contract)
    assert [v.security_invoker for v in back.views] == [False]
    assert {k: v for k, v in structure(back).items() if not k.startswith("migration_")} == structure(start)


def test_an_out_folder_with_an_env_py_of_its_own_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "env.py").write_text("from alembic import context\n")
    assert main(["plan", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no `TARGET = ops.Target(...)` line to write the plan's target into" in err.splitlines()[-1]
    assert "Traceback" not in err
    assert (tmp_path / "env.py").read_text() == "from alembic import context\n"


def test_a_plan_over_several_schemas_is_manual(pg: Server, tmp_path: Path) -> None:
    name = f"plan_{next(_names)}"
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    sql(pg.dsn(name), "CREATE SCHEMA other", "CREATE TABLE public.things (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, "
        "data json)")
    path = tmp_path / "two.yaml"
    path.write_text(f"extends: {GENERIC_CONTRACT}\nschemas: [public, other]\n")
    contract = load_contract(path)
    plan = build_plan(catalog_of(pg.dsn(name), contract), contract)
    assert all(g.empty for g in plan.groups)
    assert [f.message for f in plan.findings] == [
        "1 table(s) to restructure in public, other: the ops engine works in one schema per migrations folder (PLAN-MANUAL)"]


# --------------------------------------------------------------------------------------------------
# rehearse: load, plan, migrate a copy, judge it


def test_rehearse_reaches_a_clean_copy_and_says_when_it_does_not(decided: Contract, unmoved: Contract, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNAP_CACHE", "off")  # as `filled`: store nothing in the run's state cache
    report = tmp_path / "rehearse.html"
    assert main(["rehearse", "--contract", str(decided.path), "--group", "contacts,templates", "--report",
                 str(report)]) == 0
    err = capsys.readouterr().err
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["verdict"]["status"] == "GO" and "GO" in report.read_text()
    assert [s["revision"] for s in doc["migration"]["steps"]] == ["foundation", "contacts_1", "templates_1", "expanded",
                                                                 "restructured"]
    assert set(doc["migration"]["timings"]) == {"load", "plan", "migrate", "contract", "equivalence", "rls"}
    assert "contract findings before 117 " in err and "-> after 0 {}; PLAN-MANUAL 0" in err
    assert "equivalence 0 finding(s)" in err and "RLS 0 finding(s)" in err and "0 finding(s) on the migrated copy" in err
    # a group with a step the plan leaves to a person (no moves file named): workflows' NULL workspaces need values
    assert main(["rehearse", "--contract", str(unmoved.path), "--group", "workflows", "--report", str(report)]) == 1
    out, err = capsys.readouterr()
    assert sorted(out.splitlines()) == [
        "[PLAN-MANUAL] workflows/workflows: the contract does not say how to fix: workflows.workspace_id must be NOT "
        "NULL (T-NULL) (PLAN-MANUAL)",
        "[T-NULL] workflows/workflows: workflows.workspace_id must be NOT NULL (T-NULL)"]
    verdict = json.loads(report.with_suffix(".json").read_text())["verdict"]
    assert verdict == {"status": "NO-GO", "reasons": ["plan: 1 finding(s)", "contract: 1 finding(s)"], "counts": {}}


# the generic contract for Lago: drifted legacy rows stay visible to their own tenant, as the ops engine's guards
# leave them (reported, never moved: docs/decisions.md)
LAGO = """extends: {base}
schemas: [public]
rules:
  G5: {{tenant_column: organization_id, tenant_settings: [app.current_organization_id]}}
  G7: {{drift_visible_to_child: true}}
"""
# ../shared/corpus beside the checkout (CI), or beside the folder holding checkouts side by side
CORPUS = next((p for p in (ROOT.parent / "shared" / "corpus", ROOT.parent.parent / "shared" / "corpus") if p.is_dir()),
              ROOT.parent / "shared" / "corpus")


@pytest.mark.skipif(not (CORPUS / "lago-api").is_dir(), reason=f"the corpus of real dumps is not at {CORPUS}")
def test_a_foreign_schema_plans_under_the_generic_contract(pg: Server, tmp_path: Path) -> None:
    """Lago (139 tables, multi-tenant by organization_id) against G1-G9 only: the plan matches its FKs by meaning,
    decides the tenant and nullable ones, leaves the rest to a person, and says what the ops engine cannot do."""
    name = f"plan_{next(_names)}"
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    load_schema_file(pg.dsn(name), CORPUS / "lago-api" / "structure.sql", skip_missing=True)
    path = tmp_path / "lago.yaml"
    path.write_text(LAGO.format(base=GENERIC_CONTRACT))
    contract = load_contract(path)
    cat = catalog_of(pg.dsn(name), contract)
    assert count_by_rule(check(cat, contract)) == {"G1": 2, "G2": 23, "G4": 330, "G5": 250}
    plan = build_plan(cat, contract)
    assert plan.target == ops.Target("public", "organization_id", "app.current_organization_id")
    other = plan.group("other")
    assert other is not None and len(other.tables) == 125 and sum(bool(t.tenant) for t in other.tables) == 124
    assert len(other.views) == 33  # the exports_* views and two more, made security_invoker
    messages = [f.message for f in plan.findings]
    assert sum("a person decides" in m for m in messages) == 129  # NOT NULL FKs to anything but the tenant
    assert sum("materialized view last_hour_events_mv" in m for m in messages) == 1
    assert sum("membership_roles.membership_id, organization_id" in m for m in messages) == 1  # a composite FK
    assert len(messages) == 131


@pytest.mark.skipif(not (CORPUS / "lago-api").is_dir(), reason=f"the corpus of real dumps is not at {CORPUS}")
def test_lago_rehearses_to_its_target(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole of Lago (public, organization_id, app.current_organization_id) loaded with rows, planned, migrated
    and judged: what is left of the contract is what the plan hands to a person, no row is lost, and the RLS lints
    and probes find no leak but the materialized view the plan also hands on."""
    monkeypatch.setenv("SYNAP_CACHE", "off")
    path = tmp_path / "lago.yaml"
    path.write_text(LAGO.format(base=GENERIC_CONTRACT))
    report = tmp_path / "lago.html"
    assert main(["rehearse", "--baseline", str(CORPUS / "lago-api" / "structure.sql"), "--contract", str(path),
                 "--skip-missing", "--report", str(report)]) == 1
    err = capsys.readouterr().err
    assert "contract findings before 605 {'G1': 2, 'G2': 23, 'G4': 330, 'G5': 250} -> after 130 {'G4': 130}" in err
    found = json.loads(report.with_suffix(".json").read_text())["findings"]
    manual = {(f["table"], f["column"]) for f in found["plan"]}
    assert len(found["plan"]) == 131 and all((f["table"], f["column"]) in manual for f in found["contract"])
    assert found["nothing-lost"] == []
    leaks = [f for f in found["rls"] if "not covered" not in f["message"]]
    assert [(f["rule"], f["table"]) for f in leaks] == [("RLS010", "last_hour_events_mv")]
    assert ("last_hour_events_mv", None) in manual


def test_a_plan_that_drops_a_column_before_its_data_moved_is_caught_by_equivalence(filled: Pipeline, contract: Contract,
                                                                                   unmoved: Contract, tmp_path: Path) -> None:
    """Seeded defect: a planner that dropped what the contract says to drop (users.tenant_id) instead of
    leaving the move to a person. The rows are generated (scale tiny); the reference's users revision,
    which moves every (user, tenant) pair into user_tenant_roles first, is the control."""
    before, planned, reference = (filled.clone("legacy") for _ in range(3))
    try:
        for db in (before, planned, reference):  # a member whose tenant is known only through users.tenant_id
            sql(db.dsn, f"INSERT INTO {S}.users (id, email, full_name, hashed_password, tenant_id, created_at, "
                        f"updated_at) SELECT '22222222-0000-0000-0000-0000000000aa', 'solo@example.com', 'Solo', 'x', "
                        f"min(id::text)::uuid, '2024-01-01', '2024-01-01' FROM {S}.tenants")
        plan = build_plan(before.catalog(), unmoved, ["users"])
        assert [f.column for f in plan.findings if "T-DROP" in f.message] == ["tenant_id"]  # left to a person
        write_revisions(plan, tmp_path, "a seeded defect")
        revision = tmp_path / "versions" / "0100_users.py"
        drop = '    ops.run(f"ALTER TABLE {ops.q(\'users\')} DROP COLUMN tenant_id")\n'
        revision.write_text(revision.read_text().replace("    ops.upgrade_group(GROUP)\n",
                                                         "    ops.upgrade_group(GROUP)\n" + drop, 1))
        migrate.upgrade(planned.dsn, tmp_path, ["heads"])
        migrate.upgrade(reference.dsn, REFERENCE, ["users"])
        caught = equivalence.run(before.dsn, planned.dsn, contract, ["users"]).findings
        control = equivalence.run(before.dsn, reference.dsn, contract, ["users"]).findings
    finally:
        for db in (before, planned, reference):
            db.drop()
    assert [(f.rule, f.table) for f in caught] == [("EQ-MOVED", "users")], caught
    assert "users.tenant_id" in caught[0].message and control == []


def test_rehearse_never_prints_the_baselines_password() -> None:
    from synap_verify.commands.rehearse import source

    settings = Settings.resolve({"baseline": "postgresql://owner:s3cret@db.example:5432/prod"})
    assert source(settings) == "owner@db.example:5432/prod"
    assert source(Settings.resolve({})) == "the legacy fixture"


def test_generated_backup_revision_archives_and_restores(pg: Server, legacy: str, contract: Contract,
                                                         tmp_path: Path) -> None:
    """G9 through the generated file: every backup_* table archived (checksum, audit row) and dropped; the
    downgrade restores it with its rows."""
    dsn = pg.dsn(legacy_db(pg, template=legacy))
    sql(dsn, f"INSERT INTO {S}.tenants (id, name, slug) VALUES ('11111111-0000-0000-0000-000000000001', 'Acme', 'acme')",
        f"INSERT INTO {S}.backup_users_20240115 (id, email, full_name, hashed_password, tenant_id) VALUES "
        "('22222222-0000-0000-0000-000000000001', 'a@acme.io', 'Ana', 'x', '11111111-0000-0000-0000-000000000001')")
    plan = build_plan(catalog(dsn), contract, ["backup"])
    assert len(plan.groups[0].archive) == 16 and not plan.groups[0].tables
    write_revisions(plan, tmp_path / "m", "the test")
    migrate.upgrade(dsn, tmp_path / "m", ["heads"])
    assert check(catalog(dsn), contract, ["backup"]) == []
    with psycopg.connect(dsn) as conn:
        audit = conn.execute(f"SELECT row_count FROM {S}.migration_archive WHERE table_name = 'backup_users_20240115'")
        assert audit.fetchall() == [(1,)]
    migrate.downgrade(dsn, tmp_path / "m", "foundation")
    with psycopg.connect(dsn) as conn:
        assert conn.execute(f"SELECT count(*) FROM {S}.backup_users_20240115").fetchone() == (1,)
    assert len([t for t in catalog(dsn).tables if t.startswith("backup_")]) == 16


def test_generated_renames_go_and_come_back(pg: Server, legacy: str, decided: Contract, tmp_path: Path) -> None:
    """llm: three tables renamed (an FK between two of them follows), meta_data columns renamed, the data moves the
    contract names run from the plan's folder; nothing is left, and the downgrade gives back the legacy names and
    constraints."""
    dsn = pg.dsn(legacy_db(pg, template=legacy))
    migrate.upgrade(dsn, REFERENCE, ["foundation"])
    start = catalog(dsn)
    plan = build_plan(start, decided, ["llm"])
    assert {t.legacy_name for t in plan.groups[0].tables if t.legacy_name} == {
        "llms_conversations_turns", "llms_messages", "llms_message_feedbacks"}
    write_revisions(plan, tmp_path, "the test")
    migrate.upgrade(dsn, tmp_path, ["heads"])
    after = catalog(dsn)
    assert {"messages", "message_feedbacks", "conversation_turns"} <= set(after.tables)
    assert next(fk for fk in after.tables["message_feedbacks"].foreign_keys if fk.columns == ("message_id",)).target_table \
        == "messages"
    left = {f.rule for f in check(after, decided, ["llm"])}
    assert left == set(), left
    migrate.downgrade(dsn, tmp_path, "foundation")
    assert structure(catalog(dsn)) == structure(start)
