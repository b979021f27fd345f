"""Tests of the harness itself: pytester runs of the plugin, and seeded defects it must catch."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from synap_verify.contract import Contract, load_contract
from synap_verify.pipeline import Pipeline
from synap_verify.resources import CONTRACT
from synap_verify.server import Server, embedded
from synap_verify.settings import Settings

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", autouse=True)
def state_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One state cache for this run, shared by its xdist workers and the plugin sessions they start
    (SYNAP_CACHE): a state the tests build once is reused by every later session with the same inputs,
    and nothing is left in, or taken from, the user's own cache."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if base.name.startswith("popen-gw") else base) / "state-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNAP_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def pg_factory() -> Iterator[Callable[[], Server]]:
    """Start servers of their own for modules that change cluster-wide things (roles, their attributes);
    every one is stopped at the session's end."""
    started: list[Server] = []

    def start() -> Server:
        started.append(embedded.start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def pg(pg_factory: Callable[[], Server]) -> Server:
    """A real embedded PostgreSQL server shared by the harness's own tests."""
    return pg_factory()


@pytest.fixture(scope="session")
def pipeline(pg: Server) -> Pipeline:
    """The tiny states (schema, legacy, migrated) on the shared server: built once, cloned by the tests."""
    return Pipeline(Settings.resolve({"scale": "tiny"}), pg, say=lambda _line: None)


@pytest.fixture(scope="session")
def contract() -> Contract:
    """The packaged restructure contract."""
    return load_contract(CONTRACT)
