"""The login recipe for APIs that issue tokens, and tenant B's ids read from the database an API serves.

Each API here is a small FastAPI app served by uvicorn on 127.0.0.1 (real HTTP): ``/auth/login`` issues a
fresh token per tenant, the items it serves are filtered by the token's tenant, or not (the seeded leak).
Tokens and passwords are secrets: every message, repr and pytest output is checked not to hold them.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

from synap_verify import api as synap_api
from synap_verify.errors import SynapError
from synap_verify.pipeline import Pipeline
from synap_verify.resources import suites_dir
from synap_verify.rls.context import TenantContext
from synap_verify.settings import Settings


class Credentials(BaseModel):
    email: str
    password: str


@dataclass
class Issuer:
    """The users of a login app, their tenants, and every token it has issued (what must never be printed)."""

    passwords: dict[str, str] = field(repr=False, default_factory=lambda: {"alice@a.test": secrets.token_urlsafe(12),
                                                                           "bob@b.test": secrets.token_urlsafe(12)})
    tenant_of: dict[str, str] = field(default_factory=lambda: {"alice@a.test": "a", "bob@b.test": "b"})
    tokens: dict[str, str] = field(default_factory=dict, repr=False)  # token -> tenant

    def tenant(self, authorization: str) -> str:
        tenant = self.tokens.get(authorization.removeprefix("Bearer "))
        if tenant is None:
            raise HTTPException(401, "invalid token")
        return tenant

    def add_login(self, app: FastAPI) -> None:
        @app.post("/auth/login")
        def login(body: Credentials) -> dict[str, object]:
            email = body.email
            if self.passwords.get(email) != body.password:  # echoes the request, as many frameworks' errors do
                raise HTTPException(401, f"bad credentials: {body.model_dump()}")
            token = secrets.token_urlsafe(24)
            self.tokens[token] = self.tenant_of[email]
            return {"data": {"token": token, "tenant": {"id": self.tenant_of[email]}}}


def _items_app(issuer: Issuer, leak: bool = False) -> FastAPI:
    """Items per tenant behind a bearer token: list, read, rename. ``leak``: read ignores the token's tenant."""
    items = {"a": {"a1": {"id": "a1", "name": "mine"}}, "b": {"b1": {"id": "b1", "name": "theirs"}}}
    app = FastAPI()
    issuer.add_login(app)

    def owned(authorization: str, item_id: str) -> dict[str, str]:
        tenant = issuer.tenant(authorization)
        if item_id in items[tenant]:
            return items[tenant][item_id]
        if leak:
            return next(i[item_id] for i in items.values() if item_id in i)
        raise HTTPException(404)

    @app.get("/items")
    def list_items(authorization: str = Header()) -> list[dict[str, str]]:
        return list(items[issuer.tenant(authorization)].values())

    @app.get("/items/{item_id}")
    def read(item_id: str, authorization: str = Header()) -> dict[str, str]:
        return owned(authorization, item_id)

    @app.put("/items/{item_id}")
    def rename(item_id: str, name: str, authorization: str = Header()) -> dict[str, str]:
        owned(authorization, item_id)["name"] = name
        return {"ok": "renamed"}

    @app.delete("/items/{item_id}", responses={409: {}})
    def delete(item_id: str, authorization: str = Header()) -> None:
        """Refused before the object is reached, echoing the caller's credentials (as some frameworks do)."""
        raise HTTPException(409, f"deletes are disabled for {authorization}")

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on 127.0.0.1 (a thread of this process), stopped on exit."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the login app did not start under uvicorn")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


RECIPE = {"api_login": "/auth/login", "api_login_body": '{"email": "{email}", "password": "{password}"}',
          "api_login_token": "data.token", "api_login_tenant_id": "data.tenant.id"}
TENANTS = ["alice=login:email=alice@a.test,password=${ALICE_PASSWORD}",
           "bob=login:email=bob@b.test,password=${BOB_PASSWORD}"]


@pytest.fixture
def passwords(monkeypatch: pytest.MonkeyPatch) -> Issuer:
    """An issuer whose passwords are in ALICE_PASSWORD / BOB_PASSWORD, never on a command line."""
    issuer = Issuer()
    monkeypatch.setenv("ALICE_PASSWORD", issuer.passwords["alice@a.test"])
    monkeypatch.setenv("BOB_PASSWORD", issuer.passwords["bob@b.test"])
    return issuer


def _secrets_in(text: str, issuer: Issuer) -> list[str]:
    return [s for s in (*issuer.passwords.values(), *issuer.tokens) if s in text]


def _logged_in(url: str, **options: object) -> synap_api.ApiTarget:
    return synap_api.log_in(synap_api.api_target(Settings.resolve({"api_url": url, "api_tenant": TENANTS,
                                                                   **RECIPE, **options})))


def _verdicts(target: synap_api.ApiTarget) -> dict[str, synap_api.Probe]:
    schema = synap_api.load_schema(target)
    ids = synap_api.owner_ids(schema, target.tenants[1])
    assert ids == {"item_id": "b1"}, ids  # listed by bob with the token he logged in for
    probes = synap_api.probe_cross_tenant(schema, target.headers, ids,
                                          synap_api.api_state(schema, target.tenants[1].headers, ids))
    return {p.operation: p for p in probes}


def test_tenants_log_in_and_a_correct_api_passes(passwords: Issuer) -> None:
    with _serve(_items_app(passwords)) as url:
        target = _logged_in(url)
        assert [(t.name, t.tenant_id) for t in target.tenants] == [("alice", "a"), ("bob", "b")]
        assert len(passwords.tokens) == 2 and target.headers == target.tenants[0].headers  # alice acts
        probes = _verdicts(target)
    assert {op: p.verdict for op, p in probes.items()} == {
        "GET /items/{item_id}": synap_api.PASS, "PUT /items/{item_id}": synap_api.PASS,
        "DELETE /items/{item_id}": synap_api.INCONCLUSIVE}
    assert "deletes are disabled for ***\"" in probes["DELETE /items/{item_id}"].reason  # the echo redacted
    shown = repr(target) + repr(Settings.resolve({"api_tenant": TENANTS, **RECIPE})) + repr(list(probes.values()))
    assert not _secrets_in(shown, passwords), shown


@pytest.mark.filterwarnings("error::starlette.exceptions.StarletteDeprecationWarning")
def test_tenants_log_in_to_an_in_process_app(passwords: Issuer) -> None:
    """An ASGI app under test (no URL): the relative login path is called in-process, its lifespan run, with
    no warning (Starlette's TestClient warns that its httpx client is deprecated)."""
    target = synap_api.api_target(Settings.resolve({"api": "pkg:app", "api_tenant": TENANTS, **RECIPE}))
    logged = synap_api.log_in(target, _items_app(passwords))
    assert [(t.name, t.tenant_id) for t in logged.tenants] == [("alice", "a"), ("bob", "b")]
    assert logged.headers == {"Authorization": f"Bearer {next(iter(passwords.tokens))}"}
    with pytest.raises(SynapError, match="login of tenant alice at /nowhere answered 404"):
        synap_api.log_in(replace(target, login=replace(target.login, url="/nowhere")), _items_app(passwords))


def test_a_leaking_endpoint_behind_a_login_is_a_leak(passwords: Issuer) -> None:
    with _serve(_items_app(passwords, leak=True)) as url:
        probes = _verdicts(_logged_in(url))
    read, rename = probes["GET /items/{item_id}"], probes["PUT /items/{item_id}"]
    assert read.verdict == synap_api.LEAK and "item_id b1" in read.reason, read
    assert rename.verdict == synap_api.LEAK and "changed tenant B's" in rename.reason, rename


def test_login_failures_are_one_line_without_secrets(passwords: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = secrets.token_urlsafe(12)
    with _serve(_items_app(passwords)) as url:
        monkeypatch.setenv("BOB_PASSWORD", wrong)
        with pytest.raises(SynapError) as refused:
            _logged_in(url)
        monkeypatch.setenv("BOB_PASSWORD", passwords.passwords["bob@b.test"])
        with pytest.raises(SynapError) as no_token:
            _logged_in(url, api_login_token="access_token")
        with pytest.raises(SynapError) as no_tenant_id:
            _logged_in(url, api_login_tenant_id="tenant_id")
    with pytest.raises(SynapError) as unreachable:
        _logged_in(url)  # the server is gone
    message = str(refused.value)
    assert message.startswith("login of tenant bob at /auth/login answered 401: ") and "***" in message, message
    assert wrong not in message and "check the tenant's credentials" in message
    assert "without a token at 'access_token' (the answer has: data)" in str(no_token.value)
    assert "set --synap-api-login-tenant-id" in str(no_tenant_id.value)
    assert "unreachable (ConnectError)" in str(unreachable.value)
    for error in (refused, no_token, no_tenant_id, unreachable):
        assert "\n" not in str(error.value) and not _secrets_in(str(error.value), passwords), error.value


@pytest.mark.parametrize(("options", "error"), [
    ({"api_tenant": ["alice=login:email=a,password=${NOT_SET_ANYWHERE}", "bob=X-Tenant: b"], **RECIPE},
     r"\$\{NOT_SET_ANYWHERE\} is not set: export it"),
    ({"api_tenant": [TENANTS[0], "alice=Authorization: Bearer t", TENANTS[1]], **RECIPE},
     "--synap-api-tenant alice gives both a header and a login: give one"),
    ({"api_tenant": TENANTS}, "tenant alice logs in but no --synap-api-login names where"),
    ({"api_tenant": ["a=X-Tenant: a", "b=X-Tenant: b"], **RECIPE}, "--synap-api-login is given but no tenant logs in"),
    ({"api_tenant": TENANTS, **RECIPE, "api_login_body": "{email: x}"}, "--synap-api-login-body is not JSON"),
    ({"api_tenant": TENANTS, **RECIPE, "api_login_header": "X-Token: static"}, "must place the token"),
    ({"api_tenant": ["alice=login:email", "b=X: 1"]}, "expects NAME=login:key=value"),
    ({"api_tenant": ["a=X: 1", "b=X: 2"], "api_tenant_id": ["c=1"]}, "--synap-api-tenant-id expects NAME=ID"),
])
def test_bad_login_options_are_one_line(options: dict[str, object], error: str, passwords: Issuer) -> None:
    with pytest.raises(SynapError, match=error) as raised:
        synap_api.api_target(Settings.resolve({"api_url": "http://127.0.0.1:9", **options}))
    assert "\n" not in str(raised.value) and not _secrets_in(str(raised.value), passwords)


def test_tenant_ids_given_as_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """--synap-api-tenant-id gives B's id to tenants that send headers (no login answer to read it from);
    headers expand ${VAR} as credentials do."""
    monkeypatch.setenv("SYNAP_API_TENANT_ID", "bob=6f1c0f0e-0000-4000-8000-000000000002")
    monkeypatch.setenv("TOKEN_B", "tb")
    target = synap_api.api_target(Settings.resolve(
        {"api_tenant": ["alice=Authorization: Bearer ta", "bob=Authorization: Bearer ${TOKEN_B}"]}))
    assert [(t.name, t.tenant_id) for t in target.tenants] == [
        ("alice", None), ("bob", "6f1c0f0e-0000-4000-8000-000000000002")]
    assert target.tenants[1].headers == {"Authorization": "Bearer tb"} and "tb" not in repr(target)


def test_a_body_placeholder_without_its_credential_names_the_fix(passwords: Issuer) -> None:
    with _serve(_items_app(passwords)) as url, pytest.raises(SynapError, match=r"uses \{email\} but tenant alice"):
        _logged_in(url, api_tenant=["alice=login:user=alice,password=x", TENANTS[1]])


# --- the suite as a user runs it: nothing secret in pytest's output ------------------------------------


def _run_suite(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    """The API suite's probe tests against ``url``, as verbose as pytest gets (locals of failing tests shown)."""
    options = [f"--synap-{key.replace('_', '-')}={value}" for key, value in RECIPE.items()]
    return pytester.runpytest_subprocess(
        str(suites_dir() / "test_api.py"), "-p", "no:cacheprovider", "-k", "cross_tenant", "-vv", "-l", "-s",
        "--tb=long", f"--synap-api-url={url}", *(f"--synap-api-tenant={t}" for t in TENANTS), *options, *args)


def test_the_suite_reports_a_leak_and_never_prints_a_token(pytester: pytest.Pytester, passwords: Issuer) -> None:
    with _serve(_items_app(passwords, leak=True)) as url:
        result = _run_suite(pytester, url)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "cross the tenant boundary (API-LEAK)" in output and "GET /items/{item_id}: answered 200" in output
    assert "inconclusive DELETE /items/{item_id}: answered 409 before reaching the object" in output
    assert len(passwords.tokens) == 2 and not _secrets_in(output, passwords), _secrets_in(output, passwords)


def test_the_suite_with_a_wrong_password_fails_in_one_line(pytester: pytest.Pytester, passwords: Issuer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = secrets.token_urlsafe(12)
    monkeypatch.setenv("BOB_PASSWORD", wrong)
    with _serve(_items_app(passwords)) as url:
        result = _run_suite(pytester, url)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    result.stdout.fnmatch_lines(["*synap-verify: login of tenant bob at /auth/login answered 401: *"])
    assert wrong not in output and not _secrets_in(output, passwords)


# --- tenant B's ids from the database the API serves --------------------------------------------------


def _workspaces_app(issuer: Issuer, dsn: str, leak: bool = False) -> FastAPI:
    """One read of a workspace from the database, filtered by the token's tenant (or not: ``leak``); no listing
    and no creation, so B's ids can only come from that database."""
    app = FastAPI()
    issuer.add_login(app)

    @app.get("/workspaces/{workspace_id}")
    def read(workspace_id: str, authorization: str = Header()) -> dict[str, str]:
        tenant = issuer.tenant(authorization)
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT id::text, name FROM synapscale_db.workspaces WHERE id::text = %s "
                               "AND (%s OR tenant_id::text = %s)", (workspace_id, leak, tenant)).fetchone()
        if row is None:
            raise HTTPException(404)
        return {"id": row[0], "name": row[1]}

    return app


@pytest.fixture(scope="module")
def served_db(pipeline: Pipeline) -> Iterator[tuple[str, str, str]]:
    """A migrated tiny clone (the API's database) and two of its tenants: (dsn, A, B)."""
    db = pipeline.clone("migrated")
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        a, b = synap_api.pick_tenants(synap_api.tenant_ids(conn))
    yield db.dsn, a, b
    db.drop()


@pytest.mark.parametrize("leak", [False, True])
def test_ids_from_the_database_the_api_serves(served_db: tuple[str, str, str], passwords: Issuer, leak: bool) -> None:
    """B lists nothing and creates nothing: its workspace id comes from the API's database, found by the tenant
    id its login answered; the correct read passes, the one without a tenant filter leaks."""
    dsn, a, b = served_db
    passwords.tenant_of = {"alice@a.test": a, "bob@b.test": b}
    with _serve(_workspaces_app(passwords, dsn, leak)) as url:
        target = _logged_in(url)
        schema = synap_api.load_schema(target)
        assert synap_api.owner_ids(schema, target.tenants[1]) == {}  # the API alone gives nothing
        ids = synap_api.owner_ids(schema, target.tenants[1], dsn, "tenant_id", TenantContext())
        with psycopg.connect(dsn) as conn:
            owner = conn.execute("SELECT tenant_id::text FROM synapscale_db.workspaces WHERE id::text = %s",
                                 (ids["workspace_id"],)).fetchone()
        assert owner == (b,)
        probes = synap_api.probe_cross_tenant(schema, target.headers, ids,
                                              synap_api.api_state(schema, target.tenants[1].headers, ids))
    assert [(p.operation, p.verdict) for p in probes] == [
        ("GET /workspaces/{workspace_id}", synap_api.LEAK if leak else synap_api.PASS)]


@pytest.mark.parametrize("leak", [False, True])
def test_the_suite_reads_ids_from_synap_dsn(served_db: tuple[str, str, str], passwords: Issuer,
                                            pytester: pytest.Pytester, leak: bool) -> None:
    """The suite as a user runs it against an API at a URL with --synap-dsn naming the API's database."""
    dsn, a, b = served_db
    passwords.tenant_of = {"alice@a.test": a, "bob@b.test": b}
    with _serve(_workspaces_app(passwords, dsn, leak)) as url:
        result = _run_suite(pytester, url, f"--synap-dsn={dsn}")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if leak else pytest.ExitCode.OK), output
    assert ("GET /workspaces/{workspace_id}: answered 200 with tenant B's workspace_id" in output) == leak, output
    assert "cross-tenant probe: 1 operations: " + ("LEAK 1" if leak else "pass 1") in output, output
    assert not _secrets_in(output, passwords)


# --- the API suite's operations shared by xdist workers -------------------------------------------------


def _paths_app() -> FastAPI:
    """Six paths answering what they document, one (``/broken``) answering 500: the seeded defect, and the
    document's own path documented, which Schemathesis does not test."""
    app = FastAPI()
    for name in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "openapi.json"):
        app.add_api_route(f"/{name}", lambda: {"ok": True}, methods=["GET"], operation_id=f"read_{name}")

    @app.get("/broken")
    def broken() -> dict[str, bool]:
        raise HTTPException(500, "seeded defect")

    return app


def _operations_run(result: pytest.RunResult) -> dict[str, list[str]]:
    """Operation -> the ``test_operation`` items whose subtests ran it, from a ``-v`` run's progress lines (not
    its summary, which names a failed subtest again)."""
    found: dict[str, list[str]] = {}
    for line in result.stdout.lines:
        ran = re.search(r"test_operation(\[paths-\d-of-\d\])?\[(GET /\w+)\]", line)
        if ran and "SUB" in line and not line.startswith(("SUBFAILED", "SUBPASSED")):
            found.setdefault(ran[2], []).append(ran[1] or "whole")
    return found


@pytest.mark.parametrize("workers", [0, 2])
def test_xdist_workers_share_the_operations_each_run_once(pytester: pytest.Pytester, workers: int) -> None:
    """Under ``-n 2`` ``test_operation`` is eight items, one per shard of the document's paths; every operation
    runs in exactly one of them, the seeded 500 fails exactly one, the shard left without a path (seven paths)
    is skipped and says why, and without xdist it is one item as before.

    Seeded defects (of the sharding itself): a shard's filter set on the schema its fixture returns, which
    Schemathesis replaces with its own, ran every operation in every shard; shards dealt from the document's
    paths gave one shard only ``/openapi.json``, which Schemathesis leaves out, and failed it as "no matches"."""
    with _serve(_paths_app()) as url:
        result = pytester.runpytest_subprocess(
            str(suites_dir() / "test_api.py"), "-p", "no:cacheprovider", "-k", "test_operation", "-v", "-rs",
            f"--synap-api-url={url}", "--synap-api-header=X-Key: k", *(["-n", str(workers)] if workers else []))
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    runs = _operations_run(result)
    paths = {f"GET /{name}" for name in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "broken")}
    assert set(runs) == paths and all(len(items) == 1 for items in runs.values()), runs
    items = {item for found in runs.values() for item in found}
    assert items == ({f"[paths-{i}-of-8]" for i in range(1, 8)} if workers else {"whole"}), items
    assert result.parseoutcomes().get("skipped", 0) == (1 if workers else 0)
    assert ("fewer paths to test than the 8 shards" in result.stdout.str()) == bool(workers)
    failed = [line for line in result.stdout.lines if "FAILED" in line and "test_operation" in line]
    assert failed and all("GET /broken" in line for line in failed), failed
