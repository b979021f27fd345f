"""A locally installed PostgreSQL (found via ``pg_config`` or PATH): a second major version to test on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from synap_verify.errors import SynapError
from synap_verify.server import Server
from synap_verify.server.executor import start_cluster


def find_bindir() -> Path | None:
    """The folder holding initdb/pg_ctl/postgres, or None when no installation is found."""
    candidates: list[Path] = []
    if env := os.environ.get("SYNAP_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out:
            candidates.append(Path(out))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((c for c in candidates if (c / "initdb").exists() and (c / "postgres").exists()), None)


def bindir() -> Path:
    found = find_bindir()
    if found is None:
        raise SynapError("no system PostgreSQL found (no pg_config, initdb or /usr/lib/postgresql/*/bin): "
                         "install one, set SYNAP_PG_BINDIR, or use --synap-backend=embedded")
    return found


def start(keep: bool = False, preload: tuple[str, ...] = ()) -> Server:
    return start_cluster(bindir(), "system", keep, preload=preload)
