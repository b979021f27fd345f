"""Built-in migration checks: the history itself, before any data is looked at.

Each check is a plain test whose docstring says why it matters; failures carry labelled context.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.script import Script

from synap_verify import migrate
from synap_verify.catalog import diff_catalogs
from synap_verify.errors import SynapError
from synap_verify.groups import GROUPS
from synap_verify.pipeline import Pipeline
from synap_verify.server.templates import Database
from synap_verify.settings import Settings
from synap_verify.stash import SETTINGS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One stairway item per revision, so a failure names the revision that cannot go down and up."""
    if "revision" not in metafunc.fixturenames:
        return
    settings = metafunc.config.stash[SETTINGS]
    location = settings.alembic
    try:
        targets = migrate.group_target(location, settings.groups, settings.groups == GROUPS)
        revisions = list({r.revision: r for t in targets for r in migrate.revisions_between(location, t)}.values())
    except SynapError as exc:
        metafunc.parametrize("revision", [pytest.param(None, marks=pytest.mark.skip(reason=str(exc)))], ids=["history"])
        return
    metafunc.parametrize("revision", revisions, ids=[r.revision for r in revisions])


def test_single_head(synap_settings: Settings) -> None:
    """Two heads mean two possible end states: production would end in whichever ran last."""
    migrate.single_head(synap_settings.alembic)


def test_upgrade_reaches_head(synap_migrated_db: Database, synap_settings: Settings) -> None:
    """The migrated state must be the head of the selected groups, not a partial run."""
    location = synap_settings.alembic
    targets = migrate.group_target(location, synap_settings.groups, synap_settings.groups == GROUPS)
    applied = migrate.current(synap_migrated_db.dsn, location)
    expected = migrate.resolve(location, targets)
    assert applied == expected, f"database is at {sorted(applied)}, expected {sorted(expected)}"


@pytest.fixture
def schema_db(synap_pipeline: Pipeline) -> Iterator[Database]:
    """A fresh clone of the legacy schema without rows: structure only, cheap to migrate many times."""
    if not synap_pipeline.server.disposable:
        pytest.skip("needs a disposable server (pass --synap-dsn-disposable)")
    db = synap_pipeline.clone("schema")
    yield db
    db.drop()


def test_stairway(schema_db: Database, synap_settings: Settings, revision: Script) -> None:
    """Every revision goes up, down and up again: a downgrade nobody ran is not a rollback plan."""
    location = synap_settings.alembic
    # a merge has several parents and "-1" is ambiguous: go down to its first parent (which reverts the
    # other branches too) and back up through all of them
    parents = revision.down_revision
    below = sorted(parents)[0] if isinstance(parents, tuple) else f"{revision.revision}-1"
    steps = (("up", revision.revision), ("down", below), ("up", revision.revision))
    for direction, target in steps:
        try:
            if direction == "up":
                migrate.upgrade(schema_db.dsn, location, [target])
            else:
                migrate.downgrade(schema_db.dsn, location, target)
        except Exception as exc:  # labelled context: which revision, which direction
            pytest.fail(f"stairway of {revision.revision} ({revision.doc}): {direction} to {target} failed: {exc}",
                        pytrace=False)


def test_downgrade_to_base_restores_the_legacy_schema(synap_pipeline: Pipeline, synap_settings: Settings) -> None:
    """Rollback must give back the schema production had, or the legacy application cannot run on it."""
    if not synap_pipeline.server.disposable:
        pytest.skip("needs a disposable server (pass --synap-dsn-disposable)")
    legacy, migrated = synap_pipeline.clone("schema"), synap_pipeline.clone("schema_head")  # heads: built once
    try:
        migrate.downgrade(migrated.dsn, synap_settings.alembic, "base")
        differences = diff_catalogs(legacy.catalog(), migrated.catalog())
    finally:
        legacy.drop()
        migrated.drop()
    assert not differences, "downgrade to base left the schema different from legacy:\n" + "\n".join(differences)
