"""API behaviour on the migrated database: Schemathesis over every operation, its stateful phase
through the OpenAPI links, the cross-tenant probe, and the backward-compatibility contract (PRD 11.2).

By default the API is the reference ``synapscale`` app on a migrated clone with fixture data; see
``synap_verify.api`` for pointing the same checks at another SynapScale API.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.filters import FilterSet
from schemathesis.specs.openapi.checks import ignored_auth

from synap_verify import api as synap_api
from synap_verify.errors import SynapError
from synap_verify.groups import GROUPS
from synap_verify.server import sqlalchemy_url
from synap_verify.server.templates import Database
from synap_verify.stash import SETTINGS as SETTINGS_KEY

EXAMPLES = 10  # per operation: enough to find what we have found so far, small enough for < 2 minutes
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck), database=None)
SHARDS_PER_WORKER = 4  # operations differ tenfold in requests: a worker's last shard is a few seconds, not 15


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Under xdist, ``test_operation`` is one item per shard of the document's paths, so the workers share its
    operations: Schemathesis's ``from_fixture`` makes it one item, which one worker ran whole (58 s here)
    while the others had finished. Every xdist worker collects with the same count, so all agree on the items.
    Read from this session's own xdist worker input: the environment's count reaches pytest sessions started
    under a worker too."""
    workers = int(getattr(metafunc.config, "workerinput", {}).get("workercount", 1))
    skipped = metafunc.config.stash[SETTINGS_KEY].groups != GROUPS  # one skip (api_parsed), not one per shard
    if workers > 1 and "api_shard" in metafunc.fixturenames and not skipped:
        shards = SHARDS_PER_WORKER * workers
        metafunc.parametrize("api_shard", [(i, shards) for i in range(shards)], indirect=True, scope="module",
                             ids=[f"paths-{i + 1}-of-{shards}" for i in range(shards)])


@pytest.fixture(scope="module")
def api_parsed(pytestconfig: pytest.Config) -> synap_api.ApiTarget:
    """The API under test as the options name it; it serves the whole migrated schema, so a run restricted to
    some groups skips it."""
    if pytestconfig.stash[SETTINGS_KEY].groups != GROUPS:
        pytest.skip("the API suite needs every group migrated: run it without --synap-group")
    try:
        return synap_api.api_target(pytestconfig.stash[SETTINGS_KEY])
    except SynapError as exc:
        pytest.fail(f"synap-verify: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def api_app(api_parsed: synap_api.ApiTarget, request: pytest.FixtureRequest) -> Any:
    """The in-process app on the migrated clone; None for an API at a URL (which has its own database)."""
    if api_parsed.url:
        return None
    db: Database = request.getfixturevalue("synap_migrated_db")
    try:
        return synap_api.load_app(api_parsed.app, sqlalchemy_url(db.dsn))
    except SynapError as exc:
        pytest.fail(f"synap-verify: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def api_target(api_parsed: synap_api.ApiTarget, api_app: Any) -> synap_api.ApiTarget:
    """The API under test, its tenants logged in (--synap-api-login) when they give credentials."""
    try:
        return synap_api.log_in(api_parsed, api_app)
    except SynapError as exc:
        pytest.fail(f"synap-verify: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def tenant_ids(synap_migrated_db: Database) -> dict[str, dict[str, str]]:
    with synap_migrated_db.connect() as conn:
        return synap_api.tenant_ids(conn)


@pytest.fixture(scope="module")
def tenants(tenant_ids: dict[str, dict[str, str]]) -> tuple[str, str]:
    """(A, B): A is the tenant the suite acts as, B the one whose ids A must never reach."""
    try:
        return synap_api.pick_tenants(tenant_ids)
    except SynapError as exc:
        pytest.fail(f"synap-verify: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def api_headers(api_target: synap_api.ApiTarget, request: pytest.FixtureRequest) -> dict[str, str]:
    """--synap-api-header (or tenant A of --synap-api-tenant) when given, else the reference API's stand-in
    credentials of tenant A.

    Both of its schemes are sent, so that Schemathesis's generated credentials never reach the API
    beside a valid one, except where its auth checks remove ours on purpose.
    """
    if api_target.headers:
        return api_target.headers
    acting = request.getfixturevalue("tenants")[0]
    return {"X-Tenant-ID": acting, "Authorization": f"Bearer {acting}"}


@pytest.fixture(scope="module")
def api_schema(api_target: synap_api.ApiTarget, api_app: Any) -> Any:
    """The API's OpenAPI document as Schemathesis loads it: one clear error when it is missing or broken."""
    try:
        return synap_api.load_schema(api_target, api_app)
    except SynapError as exc:
        pytest.fail(f"synap-verify: {exc}", pytrace=False)


class _Shard:
    """The paths of the document the running ``test_operation`` item leaves to the other shards' items: set by
    ``api_shard``, read by Schemathesis's filter (the schema a ``from_fixture`` fixture returns keeps no filter
    of its own: Schemathesis clones it with the lazy schema's)."""

    others: frozenset[str] = frozenset()


def _in_another_shard(ctx: Any) -> bool:
    return ctx.operation.path in _Shard.others


@pytest.fixture(scope="module")
def api_shard(api_schema: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The schema of one ``test_operation`` item: every operation, or under xdist every n-th path of those
    Schemathesis would test (``pytest_generate_tests``). By path, so that the methods of a path stay together;
    dealt from the operations Schemathesis yields (``schemathesis.toml``'s disabled operations, the document's
    own path and extension keys left out), so that no shard is left with paths it then drops, which Schemathesis
    fails as "no matches". A path the document gets wrong is reported by every shard: Schemathesis yields it
    before any filter."""
    shard: tuple[int, int] | None = getattr(request, "param", None)
    if shard is None:
        yield api_schema
        return
    tested = api_schema.clone(filter_set=api_schema.config.operations.filter_set_with(include=FilterSet()))
    paths = sorted({result.ok().path for result in tested.get_all_operations() if isinstance(result, Ok)})
    mine = paths[shard[0]::shard[1]]
    if not mine:
        pytest.skip(f"the API has fewer paths to test than the {shard[1]} shards of the xdist workers")
    _Shard.others = frozenset(paths) - set(mine)
    try:
        yield api_schema
    finally:
        _Shard.others = frozenset()


@pytest.fixture(scope="module")
def api_stats(request: pytest.FixtureRequest) -> Iterator[dict[str, Counter[int]]]:
    """Responses per operation and status; printed at the end of the module."""
    stats: dict[str, Counter[int]] = defaultdict(Counter)
    yield stats
    if stats:
        _write_lines(request, ["", f"synap-verify API: {len(stats)} operations, "
                                   f"{sum(c.total() for c in stats.values())} generated requests",
                               *(f"  {label:<60} " + ", ".join(f"{code}x{n}" for code, n in sorted(stats[label].items()))
                                 for label in sorted(stats))])


@pytest.fixture(scope="module")
def api_failures(request: pytest.FixtureRequest) -> Iterator[dict[str, set[str]]]:
    """Operations per kind of failure (server error, undocumented status code, schema violation, ...): one line each."""
    kinds: dict[str, set[str]] = defaultdict(set)
    yield kinds
    if kinds:
        _write_lines(request, ["synap-verify API failures by kind:",
                               *(f"  {kind:<30} {len(kinds[kind])} operation(s): {', '.join(sorted(kinds[kind])[:4])}"
                                 for kind in sorted(kinds))])


def _write_lines(request: pytest.FixtureRequest, lines: list[str]) -> None:
    """A summary in the terminal (quietly nothing without a terminal reporter)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in lines:
            reporter.write_line(line)


schema = schemathesis.pytest.from_fixture("api_shard").exclude(func=_in_another_shard)


@schema.parametrize()
@SETTINGS
def test_operation(case: Any, api_headers: dict[str, str], api_stats: dict[str, Counter[int]],
                   api_target: synap_api.ApiTarget, api_failures: dict[str, set[str]]) -> None:
    """Every default Schemathesis check, plus: renamed fields come back with their deprecated aliases.

    A public operation (--synap-api-public) is not held to the document's global security (``ignored_auth``).
    """
    # a fresh dict per call: Schemathesis's auth checks edit the headers they are given
    response = case.call(headers=dict(api_headers))
    api_stats[case.operation.label][response.status_code] += 1
    public = api_target.is_public(case.operation.method, case.operation.path)
    try:
        case.validate_response(response, headers=dict(api_headers), additional_checks=synap_api.EXTRA_CHECKS,
                               excluded_checks=[ignored_auth] if public else [])
    except FailureGroup as group:
        for failure in group.exceptions:
            api_failures[synap_api.failure_kind(failure)].add(case.operation.label)
        raise


def test_stateful(api_schema: Any, api_headers: dict[str, str], api_stats: dict[str, Counter[int]]) -> None:
    """Create → read → update → list children → delete, following the OpenAPI links."""
    base = api_schema.as_state_machine()
    failures: list[str] = []

    class Machine(base):  # type: ignore[valid-type, misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": dict(api_headers)}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            api_stats[f"stateful {case.operation.label}"][response.status_code] += 1

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            # Recorded, not raised: Hypothesis would replay the failing sequence against a database the first
            # run already changed, and report a "flaky strategy" instead of the failure it found.
            try:
                super().validate_response(response, case, additional_checks=synap_api.EXTRA_CHECKS, **kwargs)
            except (AssertionError, FailureGroup) as exc:
                failures.append(f"{case.operation.label}: {exc}")

    calls_before = sum(sum(c.values()) for label, c in api_stats.items() if label.startswith("stateful "))
    # The rules a step may take depend on what the database answered before, so Hypothesis can meet the
    # same choices with different outcomes and stop exploring. That ends generation early; it is not a
    # failure of the API, whose every response up to there was validated and recorded above.
    with contextlib.suppress(FlakyStrategyDefinition):
        Machine.run(settings=settings(SETTINGS, max_examples=EXAMPLES * 3, stateful_step_count=6,
                                      phases=[Phase.explicit, Phase.generate]))
    calls = sum(sum(c.values()) for label, c in api_stats.items() if label.startswith("stateful ")) - calls_before
    assert calls >= 10, f"the stateful phase made only {calls} calls: it did not exercise the links"
    if failures:
        pytest.fail(f"{len(failures)} stateful failure(s); first:\n{failures[0]}", pytrace=False)


@pytest.fixture(scope="module")
def probes(api_schema: Any, api_headers: dict[str, str], api_target: synap_api.ApiTarget,
           request: pytest.FixtureRequest) -> list[synap_api.Probe]:
    """Tenant A calls every operation that takes an id with tenant B's ids; each answer gets a verdict.

    B's ids and B's state come from the API itself when the user names two tenants (--synap-api-tenant);
    ids no listing or creation gives, from the database the API serves when B's tenant id is known (an API
    at a URL: --synap-dsn; an app: the migrated clone it is served on). The harness's own fixture is used
    only for an app served on it: an API with its own database has never seen the harness's ids.
    """
    if api_target.tenants:
        owner = api_target.tenants[1]
        ids = synap_api.owner_ids(api_schema, owner, _served_dsn(api_target, request), **_tenancy(request))
        if not ids:
            pytest.fail(f"synap-verify: tenant {owner.name} lists no object through the API's GET collections and "
                        "creates none through its POSTs: create some for it, check its credentials, or let the "
                        "probe read its ids from the API's database (--synap-dsn and --synap-api-tenant-id "
                        f"{owner.name}=ID, or --synap-api-login-tenant-id)", pytrace=False)
        return synap_api.probe_cross_tenant(api_schema, api_headers, ids,
                                            synap_api.api_state(api_schema, owner.headers, ids))
    if api_target.url:
        pytest.fail("synap-verify: the cross-tenant probe of an API at a URL needs two of its tenants: "
                    "--synap-api-tenant 'A=Header: value' --synap-api-tenant 'B=Header: value'", pytrace=False)
    tenant_b = request.getfixturevalue("tenants")[1]
    db: Database = request.getfixturevalue("synap_migrated_db")
    ids_b = synap_api.param_ids(request.getfixturevalue("tenant_ids")[tenant_b])
    with db.connect() as conn:
        return synap_api.probe_cross_tenant(api_schema, api_headers, ids_b, synap_api.database_state(conn, tenant_b))


def _served_dsn(api_target: synap_api.ApiTarget, request: pytest.FixtureRequest) -> str | None:
    """The database the API under test serves: --synap-dsn for an API at a URL, the migrated clone for an app."""
    if api_target.url:
        return request.config.stash[SETTINGS_KEY].dsn
    db: Database = request.getfixturevalue("synap_migrated_db")
    return db.dsn


def _tenancy(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The contract's tenant column and the settings that name the current tenant (as the RLS suite reads
    them), for reading B's rows."""
    from synap_verify.rls import setup

    settings = request.config.stash[SETTINGS_KEY]
    config = setup(settings.contract, settings.tenant_settings).config
    return {"column": config.tenant_column, "context": config.context}


def test_cross_tenant_probe(probes: list[synap_api.Probe], request: pytest.FixtureRequest) -> None:
    """Tenant A, calling every operation that takes an id with tenant B's ids, never gets B's data nor changes it.

    RLS would hide a forgotten ``tenant_id`` filter from the database's side; this is the same promise
    seen from the client's side, for every operation, whatever the API's own code does. 403/404 and a
    2xx without B's data pass; 5xx is the next test's; 400/422 are inconclusive, listed in the summary.
    """
    probed = [p for p in probes if p.status is not None]
    assert probed, "no operation could be probed: " + "; ".join(f"{p.operation}: {p.skipped}" for p in probes)
    verdicts = Counter(p.verdict for p in probed)
    _write_lines(request, ["", f"synap-verify cross-tenant probe: {len(probed)} operations: "
                           + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())),
                           *(f"  inconclusive {p.operation}: {p.reason}" for p in probed
                             if p.verdict == synap_api.INCONCLUSIVE)])
    leaks = [f"{p.operation}: {p.reason}" for p in probed if p.verdict == synap_api.LEAK]
    assert not leaks, f"{len(leaks)} of {len(probed)} operations cross the tenant boundary ({synap_api.PROBE_LEAK}):\n" \
        + "\n".join(leaks)


def test_cross_tenant_ids_cause_no_server_error(probes: list[synap_api.Probe]) -> None:
    """Another tenant's id is an unknown id to tenant A: a 5xx is a bug in the handler, not a tenant leak."""
    errors = [f"{p.operation}: {p.reason}" for p in probes if p.verdict == synap_api.SERVER_ERROR]
    assert not errors, f"{len(errors)} operations fail on another tenant's id ({synap_api.PROBE_SERVER_ERROR}):\n" \
        + "\n".join(errors)


def test_backward_compatible_document(api_schema: Any) -> None:
    """PRD 11.2: old field names and the paths of renamed tables are still served, marked deprecated."""
    problems = synap_api.compat_problems(api_schema.raw_schema)
    assert not problems, "\n".join(problems)
