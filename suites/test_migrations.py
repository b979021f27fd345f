"""Built-in migration checks: the history itself, before any data is looked at.

Each check is a plain test whose docstring says why it matters; failures carry labelled context.
"""

from __future__ import annotations

import pytest
from alembic.script import Script

from synap_verify import migrate
from synap_verify.catalog import diff_catalogs
from synap_verify.pipeline import Pipeline
from synap_verify.server.templates import Database
from synap_verify.settings import Settings


def test_single_head(synap_settings: Settings) -> None:
    """Two heads mean two possible end states: production would end in whichever ran last."""
    migrate.single_head(synap_settings.alembic)


def test_upgrade_reaches_head(synap_migrated_db: Database, synap_settings: Settings) -> None:
    """The migrated state must be the head of the selected groups, not a partial run."""
    applied = migrate.current(synap_migrated_db.dsn, synap_settings.alembic)
    targets = migrate.group_target(synap_settings.alembic, synap_settings.groups, every_group=False)
    expected = {rev.revision for t in targets for rev in migrate.revisions_between(synap_settings.alembic, t)[-1:]}
    assert expected <= applied or applied == {migrate.single_head(synap_settings.alembic)}, (
        f"database is at {sorted(applied)}, expected the heads {sorted(expected)}")


@pytest.fixture(scope="module")
def schema_db(synap_pipeline: Pipeline) -> Database:
    if not synap_pipeline.server.disposable:
        pytest.skip("needs a disposable server (pass --synap-dsn-disposable)")
    db = synap_pipeline.clone("schema")
    yield db  # type: ignore[misc]
    db.drop()


def test_stairway(schema_db: Database, synap_settings: Settings) -> None:
    """Every revision goes up, down and up again: a downgrade nobody ran is not a rollback plan."""
    location = synap_settings.alembic
    for rev in migrate.revisions_between(location, migrate.single_head(location)):
        for target in (rev.revision, _below(rev), rev.revision):
            try:
                if target == rev.revision:
                    migrate.upgrade(schema_db.dsn, location, [target])
                else:
                    migrate.downgrade(schema_db.dsn, location, target)
            except Exception as exc:  # labelled context: which revision, which direction
                pytest.fail(f"stairway at {rev.revision} ({rev.doc}) going to {target}: {exc}", pytrace=False)


def test_downgrade_to_base_restores_the_legacy_schema(synap_pipeline: Pipeline, synap_settings: Settings) -> None:
    """Rollback must give back the schema production had, or the legacy application cannot run on it."""
    if not synap_pipeline.server.disposable:
        pytest.skip("needs a disposable server (pass --synap-dsn-disposable)")
    legacy, migrated = synap_pipeline.clone("schema"), synap_pipeline.clone("schema")
    try:
        migrate.upgrade(migrated.dsn, synap_settings.alembic, ["heads"])
        migrate.downgrade(migrated.dsn, synap_settings.alembic, "base")
        differences = diff_catalogs(legacy.catalog(), migrated.catalog())
    finally:
        legacy.drop()
        migrated.drop()
    assert not differences, "downgrade to base left the schema different from legacy:\n" + "\n".join(differences)


def _below(rev: Script) -> str:
    """The state just before ``rev`` on its own branch (other branches stay where they are)."""
    return "base" if rev.down_revision is None else f"{rev.revision}-1"
