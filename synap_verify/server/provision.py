"""Pick the backend the settings ask for and return a running :class:`Server`."""

from __future__ import annotations

from synap_verify.server import Server
from synap_verify.settings import Settings


def provision(settings: Settings) -> Server:
    if settings.backend == "dsn":
        from synap_verify.server import dsn

        assert settings.dsn is not None  # validated in Settings
        return dsn.attach(settings.dsn, settings.dsn_disposable, settings.disposable_pattern)
    if settings.backend == "docker":
        from synap_verify.server import docker

        return docker.start(settings.docker_image)
    if settings.backend == "system":
        from synap_verify.server import system

        return system.start(settings.keep, settings.server_preload)
    from synap_verify.server import embedded

    return embedded.start(settings.keep, settings.server_preload)
