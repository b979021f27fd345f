"""One settings object for the plugin and the CLI.

Precedence: command line > ``[tool.synap_verify]`` in pyproject.toml or ``synap_*`` ini keys >
``SYNAP_*`` environment variables > defaults. Every value is validated here, once, so a bad one fails
at start-up with a single line instead of deep inside a fixture.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from synap_verify.errors import SynapError
from synap_verify.groups import resolve_groups, resolve_names
from synap_verify.resources import CONTRACT, REFERENCE_MIGRATIONS
from synap_verify.server.cache import default_root

BACKENDS = ("embedded", "system", "docker", "dsn")
SCALES = ("tiny", "small", "prod")
# suite family -> module of the built-in suites; "bench" (the G6 gate, minutes at prod) runs only when named
SUITES: dict[str, str] = {
    "migrations": "test_migrations.py",
    "contract": "test_contract.py",
    "integrity": "test_integrity.py",
    "json": "test_json_properties.py",
    "rls": "test_rls.py",
    "api": "test_api.py",
    "bench": "test_regression.py",
}
DEFAULT_SUITES = tuple(name for name in SUITES if name != "bench")
OPTION_NAMES = {"groups": "group"}  # field -> its option's name, where the two differ
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    """Where the harness points and how much data it makes."""

    groups: tuple[str, ...] = ()
    backend: str = "embedded"
    dsn: str | None = None
    dsn_disposable: bool = False
    disposable_pattern: str = r"(^|_)(test|tmp|scratch|disposable|ci)(_|$)"
    scale: str = "small"
    seed: int = 20240101
    alembic: Path = REFERENCE_MIGRATIONS
    contract: Path = CONTRACT
    baseline: Path | str | None = None  # a schema file, or the DSN of a database to take it from
    baseline_prelude: Path | None = None  # SQL run before the baseline (objects the dump uses but does not define)
    baseline_skip_missing: bool = False  # load what the server can, leave out (and list) what needs a missing object
    stats: Path | str | None = None  # production's statistics (a stats export file, or a DSN to read them from)
    stats_scale: float = 1.0  # with stats: rows per table = production's reltuples times this factor
    keep: bool = False
    cache: Path | None = field(default_factory=default_root)  # the state cache's folder; None: off
    run_dir: str = "auto"  # where a local cluster runs: a folder, or auto (in memory when it fits, else temp)
    docker_image: str = "postgres:16"
    tenant_settings: tuple[str, ...] = field(default=("app.current_tenant_id",))
    tenant_column: str = "tenant_id"  # the generated rows take their parents' value of it (the contract's G5)
    suites: tuple[str, ...] = DEFAULT_SUITES
    report: Path | None = None  # an HTML report (and its .json twin) written at the session's end
    api: str | None = None  # module:attr of the ASGI app under test (default: the reference app)
    api_url: str | None = None  # a running API to test instead
    # credentials: never in a repr (pytest shows reprs of what a failing assertion or fixture holds)
    api_header: tuple[str, ...] = field(default=(), repr=False)  # 'Name: value' sent with every API request
    # 'NAME=Header: value' or 'NAME=login:key=value,...' per tenant: the first acts, the second owns
    api_tenant: tuple[str, ...] = field(default=(), repr=False)
    api_tenant_id: tuple[str, ...] = ()  # 'NAME=ID': a tenant's id in the database the API serves
    api_login: str | None = None  # URL (or path relative to the API) that issues tokens to tenants that log in
    api_login_body: str | None = field(default=None, repr=False)  # JSON template, {key} from the tenant's login:
    api_login_token: str | None = None  # JSON path of the token in the login answer (default access_token)
    api_login_header: str | None = None  # how the token is sent (default 'Authorization: Bearer {token}')
    api_login_tenant_id: str | None = None  # JSON path of the tenant's id in the login answer
    api_public: tuple[str, ...] = ()  # operations ('GET /health') or paths ('/docs') served without credentials
    bench_round_trip_ms: float | None = None  # a slowdown must exceed 5% of this round trip (None: the gate's G6)
    bench_unprepared: bool = False  # time unprepared statements (planning in every sample)
    bench_rounds: int | None = None  # interleaved rounds per benchmark query (None: the gate's G6)
    server_preload: tuple[str, ...] = ()  # shared_preload_libraries of a cluster the harness starts (pg_stat_statements)

    @classmethod
    def resolve(
        cls,
        cli: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Merge the three sources (first non-empty wins) and validate the result.

        A key may be spelled as its option (``group``, ``SYNAP_GROUP``) or as the field (``groups``).
        """
        env = os.environ if env is None else env
        merged: dict[str, Any] = {}
        from_env = {k[6:].lower(): v for k, v in env.items() if k.startswith("SYNAP_")}
        for f in fields(cls):
            for source in (cli or {}, config or {}, from_env):
                value = source.get(f.name, source.get(OPTION_NAMES.get(f.name, f.name)))
                if value not in (None, "", [], ()):
                    merged[f.name] = value
                    break
        return cls._validated(merged)

    @classmethod
    def _validated(cls, raw: dict[str, Any]) -> Settings:
        out: dict[str, Any] = dict(raw)
        if "groups" in raw:
            groups = raw["groups"]
            out["groups"] = resolve_groups(_as_list(groups))
        else:
            out["groups"] = resolve_groups([])
        backend = out.get("backend", cls.backend)
        if backend not in BACKENDS:
            raise SynapError(f"unknown backend '{backend}': use one of {', '.join(BACKENDS)} (--synap-backend)")
        if out.get("dsn") and "backend" not in raw:
            out["backend"] = "dsn"
        if out.get("backend") == "dsn" and not out.get("dsn"):
            raise SynapError("--synap-backend=dsn needs --synap-dsn=postgresql://user@host:port/db")
        scale = out.get("scale", cls.scale)
        if scale not in SCALES:
            raise SynapError(f"unknown scale '{scale}': use one of {', '.join(SCALES)} (--synap-scale)")
        for key in ("dsn_disposable", "keep", "bench_unprepared", "baseline_skip_missing"):
            if key in out:
                out[key] = _as_bool(out[key], key)
        for key, kind in (("seed", int), ("bench_rounds", int), ("bench_round_trip_ms", float), ("stats_scale", float)):
            if key in out:
                out[key] = _as_number(out[key], key, kind)
        if out.get("bench_round_trip_ms", 0) < 0 or out.get("bench_rounds", 1) < 1:  # absent: the gate's own
            raise SynapError("--synap-bench-round-trip-ms must be >= 0 and --synap-bench-rounds >= 1")
        if out.get("stats_scale", 1.0) <= 0:
            raise SynapError("--synap-stats-scale multiplies production's row counts: give a number > 0, e.g. 0.1")
        if "suites" in out:
            out["suites"] = resolve_names(_as_list(out["suites"]), tuple(SUITES), "suite", "--synap-suites",
                                          empty=DEFAULT_SUITES)
        if "server_preload" in out:
            out["server_preload"] = tuple(lib for lib in _as_list(out["server_preload"]) if lib)
            if not all(re.fullmatch(r"\w+", lib) for lib in out["server_preload"]):
                raise SynapError("server_preload: library names only, e.g. pg_stat_statements")
        for key in ("api_header", "api_tenant", "api_tenant_id", "api_public"):
            if key in out:
                out[key] = tuple(h.strip() for h in _as_list(out[key], sep="\n") if h.strip())
        if len(out.get("api_tenant", ())) == 1:
            raise SynapError("--synap-api-tenant names one tenant: give two, NAME=HEADER or NAME=login:... each (the "
                             "first acts, the second owns the objects)")
        if out.get("api") and out.get("api_url"):
            raise SynapError("--synap-api and --synap-api-url name two different APIs: give one")
        if out.get("api") and ":" not in out["api"]:
            raise SynapError(f"--synap-api expects module:attr, got {out['api']!r}")
        if "cache" in out:
            off = str(out["cache"]).strip().lower() in FALSE_WORDS
            out["cache"] = None if off else Path(out["cache"]).expanduser().resolve()
        if out.get("run_dir", "auto") != "auto":
            folder = Path(out["run_dir"]).expanduser()
            if not folder.is_dir():
                raise SynapError(f"--synap-run-dir: {folder} is not a folder: give an existing one, or auto")
            out["run_dir"] = str(folder.resolve())
        if out.get("report"):
            out["report"] = Path(out["report"]).expanduser().resolve()
        for key in ("alembic", "contract", "baseline", "baseline_prelude", "stats"):
            if key in ("baseline", "stats") and isinstance(out.get(key), str) and is_dsn(out[key]):
                continue
            if out.get(key) is not None:
                path = Path(out[key]).expanduser()
                if not path.exists():
                    raise SynapError(f"--synap-{key.replace('_', '-')}: {path} does not exist")
                out[key] = path.resolve()
        if isinstance(out.get("tenant_settings"), str):
            out["tenant_settings"] = tuple(s.strip() for s in out["tenant_settings"].split(",") if s.strip())
        try:
            re.compile(out.get("disposable_pattern", cls.disposable_pattern))
        except re.error as exc:
            raise SynapError(f"disposable_pattern is not a valid regular expression: {exc}") from None
        return cls(**out)


def is_dsn(value: str) -> bool:
    """A baseline (or statistics) given as a live database rather than a file."""
    return value.startswith(("postgresql://", "postgres://")) or "dbname=" in value or "host=" in value


def _as_list(value: Any, sep: str = ",") -> list[str]:
    """A list option from any source: repeated on the command line, a TOML array, or one separated string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(sep)]
    return [str(part) for part in value]


def _as_number(value: Any, name: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise SynapError(f"--synap-{name.replace('_', '-')} must be a number, got '{value}'") from None


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise SynapError(f"{name} must be true or false, got '{value}'")


def pyproject_table(start: Path) -> dict[str, Any]:
    """The ``[tool.synap_verify]`` table of the nearest pyproject.toml above ``start`` (or empty)."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise SynapError(f"{candidate}: invalid TOML ({exc})") from None
            table = data.get("tool", {}).get("synap_verify", {})
            return {k.replace("-", "_"): v for k, v in table.items()}
    return {}
