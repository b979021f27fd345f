"""Tests of the harness itself: pytester runs of the plugin, and seeded defects it must catch."""

from collections.abc import Iterator

import pytest

from synap_verify.server import Server, embedded

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def pg() -> Iterator[Server]:
    """A real embedded PostgreSQL server for the harness's own tests."""
    server = embedded.start()
    yield server
    server.stop()
