"""The cross-tenant probe's verdicts on small APIs of their own, and on the reference API run as a server.

Each seeded app keeps its own data (never the harness's database): the probe must take tenant B's ids
from the API, as B lists them, and judge A's answers: a leak only when B's data comes back or changes.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Header, HTTPException, Request
from starlette.responses import JSONResponse

from synap_verify import api as synap_api
from synap_verify.errors import SynapError
from synap_verify.pipeline import Pipeline
from synap_verify.server import sqlalchemy_url
from synap_verify.settings import Settings
from synapscale.api.app import create_app

A, B = {"X-Tenant": "a"}, {"X-Tenant": "b"}


def _app(leak: bool = False, crash: bool = False, empty_for_others: bool = False, b_has_none: bool = False) -> FastAPI:
    """Items per tenant: list, create, read, rename. ``leak``: read ignores the tenant; ``crash``: an unknown id is
    a 500; ``empty_for_others``: the list of an item's notes answers 200 [] to another tenant instead of 404;
    ``b_has_none``: tenant B starts with no item."""
    items: dict[str, dict[str, dict[str, str]]] = {"a": {"a1": {"id": "a1", "name": "mine"}},
                                                   "b": {} if b_has_none else {"b1": {"id": "b1", "name": "theirs"}}}
    app = FastAPI()

    @app.exception_handler(RuntimeError)
    def crashed(_request: Request, exc: RuntimeError) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {exc}"}, status_code=500)  # as a deployed server answers

    def owned(tenant: str, item_id: str) -> dict[str, str]:
        if item_id in items[tenant]:
            return items[tenant][item_id]
        if leak:
            return next(i[item_id] for i in items.values() if item_id in i)
        if crash:
            raise RuntimeError("unknown id")
        raise HTTPException(404)

    @app.get("/items")
    def list_items(x_tenant: str = Header()) -> list[dict[str, str]]:
        return list(items[x_tenant].values())

    @app.post("/items", status_code=201)
    def create(x_tenant: str = Header()) -> dict[str, str]:
        item = {"id": f"{x_tenant}{len(items[x_tenant]) + 1}", "name": "new"}
        items[x_tenant][item["id"]] = item
        return item

    @app.get("/items/{item_id}")
    def read(item_id: str, x_tenant: str = Header()) -> dict[str, str]:
        return owned(x_tenant, item_id)

    @app.get("/items/{item_id}/notes")
    def notes(item_id: str, x_tenant: str = Header()) -> list[str]:
        if empty_for_others and item_id not in items[x_tenant]:
            return []
        owned(x_tenant, item_id)
        return ["a note"]

    @app.put("/items/{item_id}")
    def rename(item_id: str, name: str, x_tenant: str = Header()) -> dict[str, str]:
        item = owned(x_tenant, item_id)
        item["name"] = name
        return {"ok": "renamed"}

    return app


def _probe(app: FastAPI) -> dict[str, synap_api.Probe]:
    schema = synap_api.load_schema(synap_api.ApiTarget(app="seeded:app", headers=A), app)
    ids = synap_api.ids_from_api(schema, B)
    assert ids == {"item_id": "b1"}, ids  # B's own id, listed by B through the API
    probes = synap_api.probe_cross_tenant(schema, A, ids, synap_api.api_state(schema, B, ids))
    return {p.operation: p for p in probes}


def test_a_correct_api_passes_every_probe() -> None:
    probes = _probe(_app())
    assert {op: p.verdict for op, p in probes.items()} == {
        "GET /items/{item_id}": "pass", "GET /items/{item_id}/notes": "pass", "PUT /items/{item_id}": "pass"}


def test_an_endpoint_returning_another_tenants_object_is_a_leak() -> None:
    probes = _probe(_app(leak=True))
    read, rename = probes["GET /items/{item_id}"], probes["PUT /items/{item_id}"]
    assert read.verdict == synap_api.LEAK and "item_id b1" in read.reason, read
    # the rename answered without B's data, but B's object changed, as B reads it
    assert rename.verdict == synap_api.LEAK and "changed tenant B's" in rename.reason, rename


def test_a_500_on_an_unknown_id_is_a_server_error_not_a_leak() -> None:
    probes = _probe(_app(crash=True))
    assert {p.verdict for p in probes.values()} == {synap_api.SERVER_ERROR}


def test_a_list_answering_an_empty_list_to_another_tenant_passes() -> None:
    notes = _probe(_app(empty_for_others=True))["GET /items/{item_id}/notes"]
    assert (notes.status, notes.verdict) == (200, synap_api.PASS)


def test_tenant_b_creates_an_object_when_it_lists_none() -> None:
    """No listing shows an id of B's: B creates one through the collection's POST, and the probe uses it."""
    assert _probe(_app(leak=True, b_has_none=True))["GET /items/{item_id}"].verdict == synap_api.LEAK


def test_a_422_is_inconclusive_with_its_reason() -> None:
    assert synap_api.judge(422, '{"detail": "name: field required"}', {"item_id": "b1"}) == (
        synap_api.INCONCLUSIVE, 'answered 422 before reaching the object, so tenancy was not tested: '
        '{"detail": "name: field required"}')


# --- the reference API, in process and as a separate server, side by side ---------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def reference(pipeline: Pipeline) -> Iterator[tuple[str, str, str]]:
    """A migrated tiny clone and two of its tenants (A acts, B owns the most)."""
    db = pipeline.clone("migrated")
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        a, b = synap_api.pick_tenants(synap_api.tenant_ids(conn))
    yield db.dsn, a, b
    db.drop()


@pytest.fixture(scope="module")
def served(reference: tuple[str, str, str]) -> Iterator[str]:
    """The reference API as its own process: uvicorn on 127.0.0.1, on the same clone."""
    port = _free_port()
    code = (f"import uvicorn; from synapscale.api.app import create_app; "
            f"uvicorn.run(create_app({sqlalchemy_url(reference[0])!r}), host='127.0.0.1', port={port}, "
            "log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the reference API did not start under uvicorn")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _tenant(uuid: str) -> dict[str, str]:
    return {"X-Tenant-ID": uuid, "Authorization": f"Bearer {uuid}"}


def test_reference_api_in_process_and_as_a_server_agree(reference: tuple[str, str, str], served: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """In process, ids and state from the clone; as a server, only what two tenants' headers give: no leak either way."""
    dsn, a, b = reference
    app = create_app(sqlalchemy_url(dsn))
    schema = synap_api.load_schema(synap_api.ApiTarget(), app)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = synap_api.param_ids(synap_api.tenant_ids(conn)[b])
        inproc = synap_api.probe_cross_tenant(schema, _tenant(a), ids, synap_api.database_state(conn, b))
    remote_schema = synap_api.load_schema(synap_api.ApiTarget(url=served, headers=_tenant(a)))
    remote_ids = synap_api.ids_from_api(remote_schema, _tenant(b))
    remote = synap_api.probe_cross_tenant(remote_schema, _tenant(a), remote_ids,
                                          synap_api.api_state(remote_schema, _tenant(b), remote_ids))
    side: dict[str, list[Any]] = {}
    for where, probes in (("in-process", inproc), ("uvicorn", remote)):
        for p in probes:
            side.setdefault(p.operation, [None, None])[where == "uvicorn"] = p.verdict or f"skipped ({p.skipped})"
    with capsys.disabled():
        print(f"\n{'operation':<58} {'in-process':<14} uvicorn --synap-api-url")
        for op in sorted(side):
            print(f"{op:<58} {side[op][0]!s:<14} {side[op][1]}")
    for probes in (inproc, remote):
        assert [p for p in probes if p.verdict is not None], "nothing was probed"
        assert not [p for p in probes if p.verdict in (synap_api.LEAK, synap_api.SERVER_ERROR)], \
            [(p.operation, p.reason) for p in probes if p.reason]


def test_tenants_and_public_operations_from_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Command line, pyproject (lists) and SYNAP_* (one per line) all reach the target; bad input is one line."""
    target = synap_api.api_target(Settings.resolve(
        {"api_url": "http://127.0.0.1:9", "api_tenant": ["a=Authorization: Bearer ta", "b=Authorization: Bearer tb",
                                                         "b=X-Tenant-ID: 2"]},
        {"api_public": ["GET /health", "/docs"]}))
    assert [(t.name, t.headers) for t in target.tenants] == [
        ("a", {"Authorization": "Bearer ta"}), ("b", {"Authorization": "Bearer tb", "X-Tenant-ID": "2"})]
    assert target.headers == {"Authorization": "Bearer ta"}  # tenant A is who the suite acts as
    assert target.is_public("get", "/health") and target.is_public("DELETE", "/docs")
    assert not target.is_public("POST", "/health")
    monkeypatch.setenv("SYNAP_API_TENANT", "a=X-Tenant-ID: 1\nb=X-Tenant-ID: 2")
    monkeypatch.setenv("SYNAP_API_PUBLIC", "GET /")
    target = synap_api.api_target(Settings.resolve())
    assert [t.name for t in target.tenants] == ["a", "b"] and target.public == ("GET /",)
    with pytest.raises(SynapError, match="names one tenant"):
        Settings.resolve({"api_tenant": ["a=X: 1"]})
    with pytest.raises(SynapError, match="names 3 tenants"):
        synap_api.api_target(Settings.resolve({"api_tenant": ["a=X: 1", "b=X: 2", "c=X: 3"]}))
    with pytest.raises(SynapError, match="expects NAME=Header: value"):
        synap_api.api_target(Settings.resolve({"api_tenant": ["a: Bearer x", "b=X: 2"]}))
