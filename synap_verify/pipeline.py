"""The harness in one place: provision → load → migrate → (check → report, in the suites).

A :class:`Pipeline` owns the session's server and builds each database state once, as a template:
``legacy`` (the baseline schema, filled) and ``migrated`` (legacy + the selected migrations). Suites
ask for clones of those states by name and never build a state themselves. On a local backend the
states outlive the session in the state cache (:mod:`synap_verify.server.cache`), keyed by the content
of everything they are made of, so the next session with the same inputs starts with them built.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from synap_verify import datagen, migrate
from synap_verify.catalog import read_catalog, user_schemas
from synap_verify.datagen.schema import LeftOut, dump_schema, load_schema_file
from synap_verify.datagen.stats import load_stats
from synap_verify.errors import SynapError
from synap_verify.groups import GROUPS
from synap_verify.resources import LEGACY_SCHEMA, PROFILES
from synap_verify.server import Server, redact
from synap_verify.server.cache import StateCache, fingerprint
from synap_verify.server.dsn import attach
from synap_verify.server.executor import binary_version
from synap_verify.server.provision import LOCAL_BACKENDS, local_bindir, provision
from synap_verify.server.templates import Database, build_template, clone, database_exists, drop_database
from synap_verify.settings import Settings

Progress = Callable[[str], None]
# Settings fields the states are made of (paths by content, other values as they are). A new input is one
# more name in the tuple of the first state it changes: the loaded states' inputs key a cache entry, the
# migrated state's inputs are hashed into its name, so an entry holds migrated states of several histories.
LOADED_INPUTS = ("baseline", "baseline_prelude", "baseline_skip_missing", "scale", "seed", "tenant_column", "stats",
                 "stats_scale")
MIGRATED_INPUTS = ("alembic", "contract", "groups")
GENERATOR = (Path(datagen.__file__).parent, PROFILES)  # the data generator's sources and profiles
ENVIRONMENT = ("SYNAPSCALE_", "PG")  # variables a migration or a load may read (hashed: they may hold secrets)
MIGRATED_KEPT = 3  # migrated states an entry keeps besides the ones its last session used, most recent first,
OTHERS_BYTES = 2 << 30  # while together within this: every session copies the whole entry in (and a storing one
# out), and at prod one migrated state is 7 GB (the entry was 24 GB with three of them, its server ready in 64 s)
ARCHIVE_VARIABLE = "SYNAPSCALE_ARCHIVE_DIR"  # where the migrations put the dumps of the tables they archive


@dataclass
class CacheUse:
    """This session's entry in the state cache: its key, what it reused, what it built."""

    cache: StateCache
    inputs: dict[str, str]
    stored: dict[str, float] = field(default_factory=dict)  # states in the entry -> when last used
    used: set[str] = field(default_factory=set)
    built: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return StateCache.key(self.inputs)


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
    cached: CacheUse | None = None
    _baseline: Path | None = None
    _archive_before: str | None = None  # the archive variable as the session found it, put back at the end
    _archive_temp: Path | None = None
    _stats_digest: str | None = None

    @classmethod
    def start(cls, settings: Settings, say: Progress = print) -> Pipeline:
        """Stage 1, provision: a server from the configured backend (on a local one, from the state cache)."""
        if settings.cache is None or settings.backend not in LOCAL_BACKENDS:
            server = provision(settings)
            pipeline = cls(settings, server, say)
        else:
            pipeline = cls._from_cache(settings, StateCache(settings.cache), say)
            server = pipeline.server
        pipeline._claim_archive()
        say(f"synap-verify: {server.backend} PostgreSQL {server.version()} at {server.describe()} "
            f"(ready in {server.started_in:.2f}s)")
        pipeline.timings["provision"] = server.started_in
        return pipeline

    @classmethod
    def _from_cache(cls, settings: Settings, cache: StateCache, say: Progress) -> Pipeline:
        baseline = resolve_baseline(settings, say)
        inputs = loaded_inputs(settings, baseline)
        key = cache.key(inputs)
        with cache.reading(key) as entry:
            server = provision(settings, entry.pgdata if entry else None)
        if entry:
            say(f"synap-verify: state cache: entry {key} holds {', '.join(entry.states) or 'no state'} ({cache.root})")
        else:
            nearest = cache.nearest(inputs)
            changed = [name for name, value in inputs.items() if nearest and nearest.inputs.get(name) != value]
            why = f" (changed since the last entry: {', '.join(changed)})" if changed else ""
            say(f"synap-verify: state cache: no entry for key {key}{why}; the states this session builds are stored "
                f"at its end in {cache.root}")
        use = CacheUse(cache, inputs, dict(entry.states) if entry else {})
        return cls(settings, server, say, cached=use, _baseline=baseline)

    def _claim_archive(self) -> None:
        """The archive folder of every migration this session runs: in the state cache when it is on (a cached
        migrated state's audit rows name their dumps, which must travel with it to another checkout or machine),
        else a folder of the session. Never the working directory (the user's repository), nor a folder the
        user set for production: these databases are copies. Set before any migrated state is named, so the
        folder is part of its name (``migrated_inputs`` hashes the variable)."""
        self._archive_before = os.environ.get(ARCHIVE_VARIABLE)
        if self.cached:
            folder = self.cached.cache.root / "archive"
        else:
            folder = self._archive_temp = Path(tempfile.mkdtemp(prefix="synap-archive-"))
        os.environ[ARCHIVE_VARIABLE] = str(folder)

    def _release_archive(self) -> None:
        if self._archive_before is None:
            os.environ.pop(ARCHIVE_VARIABLE, None)
        else:
            os.environ[ARCHIVE_VARIABLE] = self._archive_before
        if self._archive_temp is not None and not self.settings.keep:
            shutil.rmtree(self._archive_temp, ignore_errors=True)

    @property
    def tag(self) -> str:
        """Scale and seed, and the statistics' digest and factor when they shape the data: a legacy state built
        from other statistics (or none) is another database, also on a server that outlives the session."""
        plain = f"{self.settings.scale}_{self.settings.seed}"
        if self.settings.stats is None:
            return plain
        if self._stats_digest is None:
            self._stats_digest = stats_digest(self.settings.stats)
        return f"{plain}_stats_{self._stats_digest[:10]}_x{self.settings.stats_scale:g}".replace(".", "_")

    def schema_template(self) -> str:
        """The baseline schema with no rows: for structural checks that rerun migrations many times."""
        name = "synap_schema_only"
        self._ensure(name, self._load_baseline)
        return name

    def schema_head_template(self) -> str:
        """The schema state with every revision applied: where a whole downgrade starts (named like a migrated
        state, so the cache keeps and prunes it as one)."""
        everything = replace(self.settings, groups=GROUPS)
        name = f"synap_migrated_schema_{StateCache.key(migrated_inputs(everything))[:10]}"
        self._ensure(name, self._upgrade_to_heads, source=self.schema_template)
        return name

    def _upgrade_to_heads(self, dsn: str) -> None:
        migrate.upgrade(dsn, self.settings.alembic, ["heads"])

    @property
    def baseline(self) -> Path:
        """The legacy schema file (taken once per session when it comes from a DSN)."""
        if self._baseline is None:
            self._baseline = resolve_baseline(self.settings, self.say)
        return self._baseline

    def legacy_template(self) -> str:
        """Stage 2, load: the baseline schema filled with prod-shaped data, once per session."""
        name = f"synap_legacy_{self.tag}"
        self._ensure(name, self._load)
        return name

    def migrated_template(self) -> str:
        """Stage 3, migrate: the legacy state with the selected groups' migrations applied, once."""
        name = self.migrated_name()
        self._ensure(name, self._migrate, source=self.legacy_template)
        return name

    def migrated_name(self) -> str:
        """``synap_migrated_<scale>_<seed>_<groups>_<hash of the migrations, contract, groups>``."""
        groups = self.settings.groups
        suffix = "all" if groups == GROUPS else "_".join(groups)
        digest = StateCache.key(migrated_inputs(self.settings))[:10]
        return f"synap_migrated_{self.tag}_{suffix}"[:52] + f"_{digest}"

    def stops_before_the_contract(self) -> bool:
        """Whether the migrated state is the selected groups' expand (a subset of the groups), not the end state."""
        return migrate.stops_before_head(self.settings.alembic, self.settings.groups, self.settings.groups == GROUPS)

    def _ensure(self, name: str, build: Callable[[str], None], source: Callable[[], str] | None = None) -> None:
        """Build ``name`` unless the server has it (from the cache, or built earlier in this session);
        ``source`` names the state it is built from, itself ensured only when ``name`` must be built."""
        if database_exists(self.server, name):
            if self.cached:
                self.cached.used.add(name)
            return
        template = source() if source else None
        if self.cached:
            self.say(f"synap-verify: state cache: building {name} (not in entry {self.cached.key})")
        build_template(self.server, name, build, source=template)
        if self.cached:
            self.cached.built.append(name)
            self.cached.used.add(name)

    def clone(self, state: str) -> Database:
        """A fresh database in ``state`` ('schema', 'schema_head', 'legacy' or 'migrated') for one suite to use
        and drop."""
        builders = {"schema": self.schema_template, "schema_head": self.schema_head_template,
                    "legacy": self.legacy_template, "migrated": self.migrated_template}
        template = builders[state]()
        return clone(self.server, template, prefix=f"synap_{state}")

    def stop(self) -> None:
        """Stop the server; first store its states when this session built any. With ``keep`` (--synap-keep,
        SYNAP_KEEP, any command) nothing is stored or stopped, and the session says where the server stays."""
        if isinstance(self.settings.baseline, str) and self._baseline is not None:  # a dump taken from a DSN
            shutil.rmtree(self._baseline.parent, ignore_errors=True)
        if self.cached and self.cached.built and not self.settings.keep:
            self._store(self.cached)  # before the archive folder leaves the environment: its history's name hashes it
        self._release_archive()
        if self.settings.keep:
            self.say(f"synap-verify: server kept at {self.server.describe()}: psql \"{_without_password(self.server)}\"; "
                     "databases synap_legacy_* / synap_migrated_* hold the states")
        else:
            self.server.stop()

    def _store(self, use: CacheUse) -> None:
        """Only template states go in: the session's clones are dropped, and the migrated states of other
        histories (than the session's settings name) beyond the MIGRATED_KEPT last used or OTHERS_BYTES; then the
        cluster is stopped cleanly and copied."""
        began = time.perf_counter()
        cluster = self.server.cluster
        assert cluster is not None  # a local backend (Pipeline.start)
        try:
            with self.server.connect() as conn:
                rows = conn.execute("SELECT datname, datistemplate, pg_database_size(oid) FROM pg_database "
                                    "WHERE datname NOT IN ('postgres', 'template0', 'template1')").fetchall()
            now = time.time()
            states = {name: now if name in use.used else use.stored.get(name, 0.0) for name, template, _ in rows if template}
            own = use.used | {self.migrated_name()}  # this session's history stays even when it did not clone it
            others = sorted((n for n in states if n.startswith("synap_migrated_") and n not in own),
                            key=lambda n: -states[n])
            sizes = {name: size for name, _, size in rows}
            recent = others[:MIGRATED_KEPT]
            running = itertools.accumulate(sizes[n] for n in recent)
            kept = {n for n, total in zip(recent, running, strict=True) if total <= OTHERS_BYTES}
            dropped = [n for n in others if n not in kept]
            for name in [n for n, template, _ in rows if not template] + dropped:
                drop_database(self.server, name)
                states.pop(name, None)
            if dropped:
                self.say(f"synap-verify: state cache: not kept (migrated states of other histories beyond the "
                         f"{MIGRATED_KEPT} last used or {OTHERS_BYTES >> 20} MiB): {', '.join(dropped)}")
            cluster.halt()
            where = use.cache.store(use.key, cluster.pgdata, states, use.inputs)
        except (SynapError, OSError, psycopg.Error, subprocess.CalledProcessError) as exc:
            self.say(f"synap-verify: state cache: nothing stored ({str(exc).strip()}); the next session builds again")
            return
        self.say(f"synap-verify: state cache: stored {', '.join(states)} in {time.perf_counter() - began:.1f}s ({where})")

    def _load(self, dsn: str) -> None:
        began = time.perf_counter()
        self._load_baseline(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            catalog = read_catalog(conn, user_schemas(conn))
        self.say(f"synap-verify: loading {len(catalog.tables)} tables at scale '{self.settings.scale}' "
                 f"(seed {self.settings.seed})")
        stats = None if self.settings.stats is None else load_stats(self.settings.stats)
        if stats is not None:
            self.say(f"synap-verify: shaping the data by the statistics of {len(stats.tables)} tables "
                     f"(row counts x {self.settings.stats_scale:g}; statistics only, no row was read)")
        report = datagen.fill(dsn, catalog, self.settings.scale, self.settings.seed, self._progress(),
                              self.settings.tenant_column, stats, self.settings.stats_scale)
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


def resolve_baseline(settings: Settings, say: Progress) -> Path:
    """The legacy schema file: ours, a user's dump, or a schema-only dump taken from a live DSN."""
    source = settings.baseline
    if isinstance(source, str):
        folder = Path(tempfile.mkdtemp(prefix="synap-baseline-"))
        say(f"synap-verify: taking the baseline schema from {redact(source)} (pg_dump --schema-only)")
        try:
            return dump_schema(source, folder / "baseline.sql")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return source or LEGACY_SCHEMA


def loaded_inputs(settings: Settings, baseline: Path) -> dict[str, str]:
    """What the schema and legacy states are made of, each by content: a cache entry's key is their hash."""
    inputs = {"postgres": f"{settings.backend}: {binary_version(local_bindir(settings.backend))}",
              "generator": fingerprint(*GENERATOR)}
    values = _values(settings, LOADED_INPUTS, {"baseline": baseline})
    if settings.stats is not None:
        values["stats"] = stats_digest(settings.stats)
    return inputs | values


def stats_digest(source: Path | str) -> str:
    """The statistics by content: a file's bytes, or what a DSN gave (a DSN itself is never stored or hashed)."""
    if isinstance(source, Path):
        return fingerprint(source)
    return hashlib.sha256(load_stats(source).to_json().encode()).hexdigest()


def migrated_inputs(settings: Settings) -> dict[str, str]:
    """What a migrated state is made of besides the legacy state: hashed into its name."""
    variables = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(ENVIRONMENT))
    inputs = {"environment": hashlib.sha256("\0".join(variables).encode()).hexdigest()}
    return inputs | _values(settings, MIGRATED_INPUTS, {"alembic": migrate.script_folder(settings.alembic)})


def _values(settings: Settings, names: tuple[str, ...], paths: dict[str, Path]) -> dict[str, str]:
    values = {name: paths.get(name, getattr(settings, name)) for name in names}
    return {name: fingerprint(v) if isinstance(v, Path) else str(v) for name, v in values.items()}


@contextmanager
def target_database(dsn: str | None, groups: list[str], scale: str = "tiny", seed: int | None = None,
                    state: str = "migrated", cache: str | None = None) -> Iterator[Database]:
    """The database a CLI command checks: the given DSN (read-only), or a fresh embedded one in ``state``."""
    if dsn:
        server = attach(dsn, declared_disposable=False, pattern=Settings.disposable_pattern)
        yield Database(server, server.dbname)
        return
    settings = Settings.resolve({"groups": groups, "scale": scale, "seed": seed, "cache": cache})
    pipeline = Pipeline.start(settings, say=lambda line: print(line, file=sys.stderr))
    try:
        yield pipeline.clone(state)
    finally:
        pipeline.stop()


def _without_password(server: Server) -> str:
    """The server's conninfo to paste into psql, its password left out (it is never printed)."""
    parts = conninfo_to_dict(server.conninfo)
    parts.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in parts.items()})
