"""pytest hooks only: options, markers, fixtures and the terminal summary. The work is in the pipeline."""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from synap_verify import interrupts
from synap_verify.errors import SynapError
from synap_verify.resources import suites_dir
from synap_verify.settings import DEFAULT_SUITES, SUITES, Settings, pyproject_table
from synap_verify.stash import NOTES, PIPELINE, RLS_REPORTS, SETTINGS, SKIPS

if TYPE_CHECKING:  # the pipeline pulls in alembic and SQLAlchemy: load it only when a suite needs it
    from synap_verify.pipeline import Pipeline
    from synap_verify.server.templates import Database

# option name -> (help, argparse keyword arguments); each is also an ini key ``synap_<name>``, a
# ``[tool.synap_verify]`` key and a ``SYNAP_<NAME>`` variable, resolved by Settings (command line wins)
OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "group": ("restructure group(s) to verify; repeatable or comma list (default: all)", {"action": "append"}),
    "suites": (f"suite families to run; repeatable or comma list of {', '.join(SUITES)} "
               f"(default: all but bench)", {"action": "append"}),
    "backend": ("where PostgreSQL comes from: embedded (default), system, docker, dsn", {}),
    "dsn": ("an existing server/database to verify (implies --synap-backend=dsn)", {}),
    "dsn-disposable": ("the DSN's server may be written to (create/drop databases and roles)", {"action": "store_true"}),
    "scale": ("data profile: tiny, small (default), prod", {}),
    "seed": ("seed of the data generator (same seed, same data)", {}),
    "alembic": ("alembic.ini or migrations folder of the system under test (default: the reference synapscale)", {}),
    "contract": ("restructure contract file (default: the packaged fixtures/contract.yaml)", {}),
    "baseline": ("legacy schema SQL to load instead of the packaged legacy schema (e.g. pg_dump --schema-only), "
                 "or the DSN of a database to take it from", {}),
    "baseline-prelude": ("SQL file run before the baseline: the functions, roles or schemas the dump uses but "
                         "does not define", {}),
    "baseline-skip-missing": ("load what the server can and leave out (and list) every statement that needs an "
                              "object the dump does not define or an extension the server lacks", {"action": "store_true"}),
    "stats": ("production's planner statistics to shape the generated data by: a file from synap-verify stats "
              "export, or a DSN to read them from (statistics only, never a row)", {}),
    "stats-scale": ("with --synap-stats: rows per table = production's row count times this factor (default 1)", {}),
    "keep": ("leave the server and databases up at the end and print how to connect", {"action": "store_true"}),
    "cache": ("folder of the persistent database states (default: the user cache folder), or off to build "
              "every state afresh; used by the embedded and system backends", {}),
    "run-dir": ("folder the local cluster runs in, or auto (default): in memory (/dev/shm) when the session's "
                "databases fit there, else the system's temporary folder", {}),
    "report": ("write the verification report to this HTML file (self-contained) and a .json twin beside it", {}),
    "api": ("ASGI app under test, module:app (or module:factory taking the migrated database's SQLAlchemy URL)", {}),
    "api-url": ("base URL (or OpenAPI document URL) of a running API to test instead", {}),
    "api-header": ("'Name: value' header sent with every API request (repeatable)", {"action": "append"}),
    "api-tenant": ("NAME=Header: value, or NAME=login:key=value,... (${VAR} expanded), a tenant of the API under "
                   "test (twice: the first acts, the second owns the probed objects)", {"action": "append"}),
    "api-tenant-id": ("NAME=ID: a tenant's id in the database the API serves (--synap-dsn), to read its ids there "
                      "(repeatable)", {"action": "append"}),
    "api-login": ("URL, or path relative to the API, where tenants given as NAME=login:... get their token (POST)", {}),
    "api-login-body": ("JSON template of the login request; {key} takes the tenant's key=value "
                       "(default {\"username\": \"{username}\", \"password\": \"{password}\"})", {}),
    "api-login-token": ("JSON path of the token in the login answer, e.g. data.token (default access_token)", {}),
    "api-login-header": ("how the token is sent (default 'Authorization: Bearer {token}')", {}),
    "api-login-tenant-id": ("JSON path of the tenant's id in the login answer, e.g. user.tenant_id", {}),
    "api-public": ("an operation ('GET /health') or path ('/docs') the API serves without credentials (repeatable)",
                   {"action": "append"}),
    "bench-round-trip-ms": ("benchmark gate: the application's least statement round trip; a slowdown must exceed "
                            "5%% of it (default 0.1 ms; 0 = strict ratio only)", {}),
    "bench-unprepared": ("benchmark gate: time unprepared statements (planning in every sample)", {"action": "store_true"}),
    "bench-rounds": ("benchmark gate: interleaved rounds per query (default 30)", {}),
}


def _key(name: str) -> str:
    return f"synap_{name.replace('-', '_')}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synap-verify", "synapscale_db restructure verification")
    for name, (help_text, kwargs) in OPTIONS.items():
        group.addoption(f"--synap-{name}", dest=_key(name), default=None, help=help_text, **kwargs)
        parser.addini(_key(name), help_text, default=None)


def _settings(config: pytest.Config) -> Settings:
    """Command line, then ini keys and ``[tool.synap_verify]``, then ``SYNAP_*`` (Settings merges and validates)."""
    cli: dict[str, Any] = {}
    ini: dict[str, Any] = {}
    for name in OPTIONS:
        field = name.replace("-", "_")
        cli[field] = config.getoption(_key(name)) or None  # store_true gives False when absent
        ini[field] = config.getini(_key(name))
    file_config = {**{k: v for k, v in ini.items() if v}, **pyproject_table(Path(config.rootpath))}
    return Settings.resolve(cli, file_config)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, int | pytest.ExitCode, int | pytest.ExitCode]:
    """``-n`` without ``--dist`` runs the built-in suites with xdist's work stealing rather than its default
    ``load``: their items differ a thousandfold in cost (an RLS probe in milliseconds, an API shard in
    seconds), and ``load`` hands each worker a contiguous quarter of the items at once, so one worker got
    every API shard and ran 40 s after the other had finished. A wrapper: before xdist's own (first) hook turns
    "no" into "load"."""
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", None) == "no" \
            and not getattr(config.option, "distload", False) and _runs_builtin_suites(config):
        config.option.dist = "worksteal"
    return (yield)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "synap_group(name): the restructure group a test verifies")
    config.addinivalue_line("markers", "synap_needs(capability): 'disposable' when the test writes to the server")
    try:
        settings = config.stash[SETTINGS] = _settings(config)
        if _runs_builtin_suites(config):
            settings = config.stash[SETTINGS] = _installed(settings, config.stash.setdefault(NOTES, []))
            _not_timed_in_parallel(config, settings)
    except SynapError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SKIPS] = {}
    config.add_cleanup(interrupts.install())  # Ctrl-C and SIGTERM end the session and stop its server
    _add_builtin_suites(config, settings)
    if settings.report:  # the collector's own hooks gather results and write the report at the session's end
        from synap_verify.report.collect import Collector

        config.pluginmanager.register(Collector(config, settings.report), "synap-verify-report")


# suite family -> (the package its module imports, the extra that installs it)
NEEDS = {"api": ("schemathesis", "api")}


def _installed(settings: Settings, notes: list[str]) -> Settings:
    """The suites whose packages are installed. The plugin installs without its extras (``pip install
    synap-verify``): a default run leaves out a family whose package is missing and says so at its end (with the
    terminal summary: ``-q`` hides the header); a run that names the family stops with the install to run, one
    line (not a collection traceback)."""
    missing = [family for family in settings.suites if family in NEEDS and importlib.util.find_spec(NEEDS[family][0]) is None]
    why = [f"the {family} suite needs {NEEDS[family][0]}: pip install 'synap-verify[{NEEDS[family][1]}]'" for family in missing]
    if why and settings.suites != DEFAULT_SUITES:
        raise SynapError(why[0])
    notes += [f"synap-verify: {line} (left out of this run)" for line in why]
    return replace(settings, suites=tuple(family for family in settings.suites if family not in missing))


def _not_timed_in_parallel(config: pytest.Config, settings: Settings) -> None:
    """The bench suite's gate times legacy against migrated on this machine: other xdist workers running
    beside it would be in its samples (and pytest-benchmark turns itself off under xdist, storing nothing)."""
    if "bench" in settings.suites and getattr(config.option, "dist", "no") != "no":
        raise SynapError("the bench suite times queries and cannot share the machine with other xdist workers: "
                         "run --synap-suites=bench without -n")


def _runs_builtin_suites(config: pytest.Config) -> bool:
    """No test paths on the command line, or suite families named (``--synap-suites``)."""
    return config.args_source != pytest.Config.ArgsSource.ARGS or config.getoption("synap_suites") is not None


def _add_builtin_suites(config: pytest.Config, settings: Settings) -> None:
    """Collect the packaged suites wherever the plugin is installed, beside the user's own tests.

    They are added when the command line names no test paths (``pytest`` in the application's
    repository) or names families with ``--synap-suites``; the folder is added whole (node ids read
    ``test_rls.py::...``) and ``pytest_ignore_collect`` leaves out the families not selected.
    """
    if not _runs_builtin_suites(config):
        return
    folder = suites_dir()
    given = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    if not any(folder == path or path in folder.parents for path in given):
        config.args.append(str(folder))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A suite family that was not selected is not collected, however its folder was reached."""
    if collection_path.parent != suites_dir() or collection_path.suffix != ".py":
        return None
    selected = {SUITES[family] for family in config.stash[SETTINGS].suites}
    return True if collection_path.name.startswith("test_") and collection_path.name not in selected else None


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


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run of the suites keeps what its imports and collection made (Hypothesis's and Schemathesis's modules, a
    thousand parametrized items) to its end. Frozen out of the garbage collector, they are not walked again by
    every later full collection, nor by the five pytest runs when the session ends: 0.5-0.8 s of a cached analytics
    session here (docs/benchmarks.md). Garbage is collected first, so nothing unreachable stays. A run of the
    user's own named tests is left as pytest makes it."""
    if _runs_builtin_suites(session.config):
        gc.collect()
        gc.freeze()


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


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    reports = config.stash.get(RLS_REPORTS, {})
    if reports:
        from synap_verify.rls import render_matrix

        for label, result in reports.items():
            terminalreporter.write_sep("-", f"synap-verify RLS matrix ({label}; rows with a problem)")
            terminalreporter.write_line(render_matrix(result.probes))
    for note in config.stash.get(NOTES, []):
        terminalreporter.write_line(note)
    skips = config.stash.get(SKIPS, {})
    for state, reason in skips.items():
        terminalreporter.write_line(f"synap-verify: suites on the {state} state were skipped: {reason}")
