"""The harness in one place: provision → load → migrate → (check → report, in the suites).

A :class:`Pipeline` owns the session's server and builds each database state once, as a template:
``legacy`` (the baseline schema, filled) and ``migrated`` (legacy + the selected migrations). Suites
ask for clones of those states by name and never build a state themselves.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import psycopg

from synap_verify import datagen, migrate
from synap_verify.catalog import read_catalog, user_schemas
from synap_verify.datagen.schema import LeftOut, dump_schema, load_schema_file
from synap_verify.groups import GROUPS
from synap_verify.resources import LEGACY_SCHEMA
from synap_verify.server import Server, redact
from synap_verify.server.dsn import attach
from synap_verify.server.provision import provision
from synap_verify.server.templates import Database, build_template, clone, database_exists
from synap_verify.settings import Settings

Progress = Callable[[str], None]


@dataclass
class Pipeline:
    """One session's server and the database states built on it."""

    settings: Settings
    server: Server
    say: Progress = print
    load_report: datagen.LoadReport | None = None
    steps: list[migrate.Step] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    left_out: list[LeftOut] = field(default_factory=list)  # statements of the baseline not loaded, and why

    @classmethod
    def start(cls, settings: Settings, say: Progress = print) -> Pipeline:
        """Stage 1, provision: a server from the configured backend."""
        server = provision(settings)
        say(f"synap-verify: {server.backend} PostgreSQL {server.version()} at {server.describe()} "
            f"(ready in {server.started_in:.2f}s)")
        return cls(settings, server, say, timings={"provision": server.started_in})

    @property
    def tag(self) -> str:
        return f"{self.settings.scale}_{self.settings.seed}"

    def schema_template(self) -> str:
        """The baseline schema with no rows: for structural checks that rerun migrations many times."""
        name = "synap_schema_only"
        if not database_exists(self.server, name):
            build_template(self.server, name, self._load_baseline)
        return name

    @cached_property
    def baseline(self) -> Path:
        """The legacy schema file: ours, a user's dump, or a schema-only dump taken from a live DSN once."""
        source = self.settings.baseline
        if isinstance(source, str):
            folder = Path(tempfile.mkdtemp(prefix="synap-baseline-"))
            self.say(f"synap-verify: taking the baseline schema from {redact(source)} (pg_dump --schema-only)")
            try:
                return dump_schema(source, folder / "baseline.sql")
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return source or LEGACY_SCHEMA

    def legacy_template(self) -> str:
        """Stage 2, load: the baseline schema filled with prod-shaped data, once per session."""
        name = f"synap_legacy_{self.tag}"
        if not database_exists(self.server, name):
            build_template(self.server, name, self._load)
        return name

    def migrated_template(self) -> str:
        """Stage 3, migrate: the legacy state with the selected groups' migrations applied, once."""
        groups = self.settings.groups
        suffix = "all" if groups == GROUPS else "_".join(groups)
        name = f"synap_migrated_{self.tag}_{suffix}"[:63]
        if not database_exists(self.server, name):
            legacy = self.legacy_template()
            build_template(self.server, name, self._migrate, source=legacy)
        return name

    def clone(self, state: str) -> Database:
        """A fresh database in ``state`` ('schema', 'legacy' or 'migrated') for one suite to use and drop."""
        builders = {"schema": self.schema_template, "legacy": self.legacy_template, "migrated": self.migrated_template}
        template = builders[state]()
        return clone(self.server, template, prefix=f"synap_{state}")

    def stop(self) -> None:
        if not self.settings.keep:
            self.server.stop()
        if isinstance(self.settings.baseline, str) and "baseline" in self.__dict__:  # a dump taken from a DSN
            shutil.rmtree(self.baseline.parent, ignore_errors=True)

    def _load(self, dsn: str) -> None:
        began = time.perf_counter()
        self._load_baseline(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            catalog = read_catalog(conn, user_schemas(conn))
        self.say(f"synap-verify: loading {len(catalog.tables)} tables at scale '{self.settings.scale}' "
                 f"(seed {self.settings.seed})")
        report = datagen.fill(dsn, catalog, self.settings.scale, self.settings.seed, self._progress())
        self.load_report = replace(report, notes=tuple(f"left out of the baseline: {x}" for x in self.left_out)
                                   + report.notes)
        self.timings["load"] = time.perf_counter() - began
        self.say(f"synap-verify: loaded {sum(self.load_report.rows.values()):,} rows in {self.timings['load']:.1f}s")

    def _load_baseline(self, dsn: str) -> None:
        """The baseline schema (after its prelude); every statement left out is said, never skipped silently."""
        self.left_out = load_schema_file(dsn, self.baseline, self.settings.baseline_prelude,
                                         self.settings.baseline_skip_missing)
        for item in self.left_out:
            self.say(f"synap-verify: left out of the baseline: {item}")

    def _migrate(self, dsn: str) -> None:
        began = time.perf_counter()
        location = self.settings.alembic
        targets = migrate.group_target(location, self.settings.groups, self.settings.groups == GROUPS)
        self.steps = migrate.upgrade(dsn, location, targets, on_step=self._report_step)
        self.timings["migrate"] = time.perf_counter() - began

    def _report_step(self, step: migrate.Step) -> None:
        self.say(f"synap-verify: migrated {step.revision} in {step.seconds:.2f}s")

    def _progress(self) -> Callable[[str, int, int], None]:
        last = [0.0]

        def report(table: str, done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] > 2.0 or done == total and total > 100_000:
                last[0] = now
                self.say(f"synap-verify:   {table}: {done:,}/{total:,} rows")

        return report


@contextmanager
def target_database(dsn: str | None, groups: list[str], scale: str = "tiny", seed: int | None = None,
                    state: str = "migrated") -> Iterator[Database]:
    """The database a CLI command checks: the given DSN (read-only), or a fresh embedded one in ``state``."""
    if dsn:
        server = attach(dsn, declared_disposable=False, pattern=Settings.disposable_pattern)
        yield Database(server, server.dbname)
        return
    settings = Settings.resolve({"groups": groups, "scale": scale, "seed": seed})
    pipeline = Pipeline.start(settings, say=lambda line: print(line, file=sys.stderr))
    try:
        yield pipeline.clone(state)
    finally:
        pipeline.stop()
