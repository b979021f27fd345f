"""pytest hooks only: options, markers, fixtures and the terminal summary. The work is in the pipeline."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from synap_verify.errors import SynapError
from synap_verify.settings import Settings, pyproject_table

if TYPE_CHECKING:  # the pipeline pulls in alembic and SQLAlchemy: load it only when a suite needs it
    from synap_verify.pipeline import Pipeline
    from synap_verify.server.templates import Database

SETTINGS = pytest.StashKey[Settings]()
PIPELINE = pytest.StashKey["Pipeline"]()
SKIPS = pytest.StashKey[dict[str, str]]()

# option name -> (help, argparse keyword arguments)
OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "group": ("restructure group(s) to verify; repeatable or comma list (default: all)", {"action": "append"}),
    "backend": ("where PostgreSQL comes from: embedded (default), system, docker, dsn", {}),
    "dsn": ("an existing server/database to verify (implies --synap-backend=dsn)", {}),
    "dsn-disposable": ("the DSN's server may be written to (create/drop databases and roles)", {"action": "store_true"}),
    "scale": ("data profile: tiny, small (default), prod", {}),
    "seed": ("seed of the data generator (same seed, same data)", {}),
    "alembic": ("alembic.ini or migrations folder of the system under test (default: the reference synapscale/)", {}),
    "contract": ("restructure contract file (default: fixtures/contract.yaml)", {}),
    "baseline": ("legacy schema SQL to load instead of fixtures/legacy/schema.sql (e.g. pg_dump --schema-only)", {}),
    "keep": ("leave the server and databases up at the end and print how to connect", {"action": "store_true"}),
    "report": ("write the verification report to this HTML file (self-contained) and a .json twin beside it", {}),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synap-verify", "synapscale_db restructure verification")
    for name, (help_text, kwargs) in OPTIONS.items():
        group.addoption(f"--synap-{name}", dest=f"synap_{name.replace('-', '_')}", default=None, help=help_text, **kwargs)
        parser.addini(f"synap_{name.replace('-', '_')}", help_text, default=None)
    from synap_verify.api import add_options  # --synap-api, --synap-api-url, --synap-api-header

    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "synap_group(name): the restructure group a test verifies")
    config.addinivalue_line("markers", "synap_needs(capability): 'disposable' when the test writes to the server")
    cli = {name.replace("-", "_"): config.getoption(f"synap_{name.replace('-', '_')}") for name in OPTIONS}
    cli["dsn_disposable"] = cli["dsn_disposable"] or None
    cli["keep"] = cli["keep"] or None
    cli["groups"] = cli.pop("group")
    ini = {name.replace("-", "_"): config.getini(f"synap_{name.replace('-', '_')}") for name in OPTIONS}
    ini["groups"] = ini.pop("group")
    file_config = {**{k: v for k, v in ini.items() if v}, **pyproject_table(Path(config.rootpath))}
    try:
        config.stash[SETTINGS] = Settings.resolve(cli, file_config)
    except SynapError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SKIPS] = {}
    report = config.getoption("synap_report") or config.getini("synap_report") or os.environ.get("SYNAP_REPORT")
    if report:  # the collector's own hooks gather results and write the report at the session's end
        from synap_verify.report.collect import Collector

        config.pluginmanager.register(Collector(config, Path(report)), "synap-verify-report")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect tests marked for a group that was not selected (``-k`` still applies on top)."""
    groups = set(config.stash[SETTINGS].groups)
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("synap_group")
        (drop if marker and marker.args[0] not in groups else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def synap_settings(pytestconfig: pytest.Config) -> Settings:
    """The validated settings of this run."""
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session")
def synap_pipeline(pytestconfig: pytest.Config, synap_settings: Settings) -> Iterator[Pipeline]:
    """The session's server and its database states (built lazily, once)."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        """Progress goes to the terminal as it happens, not into a test's captured output."""
        if reporter is None:
            return
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    from synap_verify.pipeline import Pipeline

    try:
        pipeline = Pipeline.start(synap_settings, say)
    except SynapError as exc:
        pytest.exit(f"synap-verify: {exc}", returncode=2)
    pytestconfig.stash[PIPELINE] = pipeline
    yield pipeline
    pipeline.stop()


@pytest.fixture(scope="session")
def synap_server(synap_pipeline: Pipeline):  # type: ignore[no-untyped-def]
    """The session's PostgreSQL server handle."""
    return synap_pipeline.server


def _state_clone(pipeline: Pipeline, state: str, config: pytest.Config) -> Iterator[Database]:
    if not pipeline.server.disposable:
        reason = f"needs a disposable server to build the {state} state (pass --synap-dsn-disposable)"
        config.stash[SKIPS][state] = reason
        pytest.skip(reason)
    try:
        db = pipeline.clone(state)
    except SynapError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield db
    if not pipeline.settings.keep:
        db.drop()


@pytest.fixture(scope="module")
def synap_legacy_db(synap_pipeline: Pipeline, pytestconfig: pytest.Config) -> Iterator[Database]:
    """A clone of the loaded, not yet migrated database, for one test module."""
    yield from _state_clone(synap_pipeline, "legacy", pytestconfig)


@pytest.fixture(scope="module")
def synap_migrated_db(synap_pipeline: Pipeline, pytestconfig: pytest.Config) -> Iterator[Database]:
    """A clone of the database at the head of the selected groups' migrations, for one test module.

    Against a read-only DSN this is the DSN's database itself: the state to verify is whatever it holds.
    """
    if synap_pipeline.server.backend == "dsn" and not synap_pipeline.server.disposable:
        from synap_verify.server.templates import Database

        yield Database(synap_pipeline.server, synap_pipeline.server.dbname)
        return
    yield from _state_clone(synap_pipeline, "migrated", pytestconfig)


@pytest.fixture
def synap_conn(synap_migrated_db: Database):  # type: ignore[no-untyped-def]
    """An autocommit psycopg connection to the migrated clone."""
    with synap_migrated_db.connect() as conn:
        yield conn


@pytest.fixture
def synap_engine(synap_migrated_db: Database):  # type: ignore[no-untyped-def]
    """A SQLAlchemy 2 engine (psycopg 3) on the migrated clone."""
    from sqlalchemy import create_engine

    from synap_verify.server import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(synap_migrated_db.dsn))
    yield engine
    engine.dispose()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rls = sys.modules.get("synap_verify.rls")  # loaded only when an RLS suite ran
    if rls is not None:
        for label, result in config.stash.get(rls.REPORTS, {}).items():
            terminalreporter.write_sep("-", f"synap-verify RLS matrix ({label}; rows with a problem)")
            terminalreporter.write_line(rls.render_matrix(result.probes))
    skips = config.stash.get(SKIPS, {})
    for state, reason in skips.items():
        terminalreporter.write_line(f"synap-verify: suites on the {state} state were skipped: {reason}")
    pipeline = config.stash.get(PIPELINE, None)
    if pipeline is not None and pipeline.settings.keep:
        terminalreporter.write_line(
            f"synap-verify: server kept at {pipeline.server.describe()}: psql \"{_safe_dsn(pipeline)}\"; "
            "databases synap_legacy_* / synap_migrated_* hold the states")


def _safe_dsn(pipeline: Pipeline) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(pipeline.server.conninfo)
    parts.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in parts.items()})
