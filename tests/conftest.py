"""Tests of the harness itself: pytester runs of the plugin, and seeded defects it must catch."""

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from synap_verify.contract import Contract, load_contract
from synap_verify.pipeline import Pipeline
from synap_verify.resources import CONTRACT
from synap_verify.server import Server, embedded
from synap_verify.settings import Settings

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    """Where the environment says PYTHONDONTWRITEBYTECODE (container images do), every Python process this run
    starts (xdist workers, pytester and CLI sessions, Locust, uvicorn) compiled every module it imports from source
    again, 2-3 s of CPU a pytest session: they keep their bytecode in a folder of the temporary directory instead
    (PYTHONPYCACHEPREFIX), nothing written beside the sources. Set before xdist starts its workers."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
        saved = os.environ.pop("PYTHONDONTWRITEBYTECODE")
        os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), f"synap-verify-tests-bytecode-{os.getuid()}")

        def restore() -> None:
            os.environ["PYTHONDONTWRITEBYTECODE"] = saved
            os.environ.pop("PYTHONPYCACHEPREFIX", None)

        config.add_cleanup(restore)
    # the in-process pytester sessions of an xdist worker each warn that pytest-benchmark is off; none of them times
    config.addinivalue_line("filterwarnings", "ignore:Benchmarks are automatically disabled because xdist plugin is active")


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
