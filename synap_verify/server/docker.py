"""A PostgreSQL container through testcontainers, for testing against a chosen major version image."""

from __future__ import annotations

import time

from psycopg.conninfo import make_conninfo

from synap_verify.errors import SynapError
from synap_verify.server import Server


def docker_available() -> str | None:
    """None when a Docker engine answers, else the reason it does not (one line)."""
    try:
        import docker
    except ImportError:
        return "the docker/testcontainers packages are not installed (pip install -e '.[containers]')"
    try:
        docker.from_env().ping()
    except Exception as exc:  # the docker SDK raises many types for "no engine"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"no Docker engine answers ({first[:120]})"
    return None


def start(image: str) -> Server:
    reason = docker_available()
    if reason:
        raise SynapError(f"--synap-backend=docker: {reason}; use --synap-backend=embedded instead")
    from testcontainers.postgres import PostgresContainer

    began = time.perf_counter()
    container = PostgresContainer(image, driver=None)
    container.start()
    conninfo = make_conninfo(
        host=container.get_container_host_ip(), port=container.get_exposed_port(5432),
        user=container.username, password=container.password, dbname=container.dbname,
    )
    return Server("docker", conninfo, disposable=True, started_in=time.perf_counter() - began, stop=container.stop)
