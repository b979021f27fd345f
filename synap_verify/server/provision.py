"""Pick the backend the settings ask for and return a running :class:`Server`."""

from __future__ import annotations

from pathlib import Path

from synap_verify.server import Server
from synap_verify.settings import Settings

LOCAL_BACKENDS = ("embedded", "system")  # clusters this process runs itself: the only ones with a state cache


def local_bindir(backend: str) -> Path:
    """The binaries of a local backend."""
    if backend == "system":
        from synap_verify.server import system

        return system.bindir()
    from synap_verify.server import embedded

    return embedded.bindir()


def provision(settings: Settings, copy_from: Path | None = None) -> Server:
    """A server; a local one starts on a copy of the stopped data directory ``copy_from`` when given."""
    if settings.backend == "dsn":
        from synap_verify.server import dsn

        assert settings.dsn is not None  # validated in Settings
        return dsn.attach(settings.dsn, settings.dsn_disposable, settings.disposable_pattern)
    if settings.backend == "docker":
        from synap_verify.server import docker

        return docker.start(settings.docker_image)
    from synap_verify.server import rundir
    from synap_verify.server.executor import start_cluster

    scale = "prod" if settings.stats is not None else settings.scale  # production's row counts: sized as prod
    parent = rundir.parent_folder(settings.run_dir, rundir.session_bytes(scale, copy_from))
    return start_cluster(local_bindir(settings.backend), settings.backend, settings.keep, copy_from,
                         settings.server_preload, parent)
