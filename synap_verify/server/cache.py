"""Persistent database states: a stopped cluster per content key, started again by later sessions.

A session on a local backend (embedded, system) that finds an entry for its key copies the entry's
data directory and starts a server on it (tens of milliseconds) instead of ``initdb`` + load +
migrate. A session that built a state stores its stopped cluster under the key at its end. The key is
the content of everything a state is made of (docs/decisions.md, "State cache"), so a changed input
never meets an old state. Entries are written under a temporary name and renamed when complete, and
a file lock orders the swap against readers: a killed session leaves nothing that looks valid.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from synap_verify.errors import SynapError
from synap_verify.server.janitor import alive

MANIFEST = "manifest.json"  # written last into an entry: a folder without it is not an entry
TEMP = ".tmp-"  # prefix of an entry being written: <TEMP><key>-<pid>
KEEP = 4  # entries kept, most recently used first (a prod-scale entry holds gigabytes)


def default_root() -> Path:
    """The user's cache folder (platformdirs when installed, else ~/.cache)."""
    try:
        from platformdirs import user_cache_path
    except ImportError:
        return Path.home() / ".cache" / "synap-verify"
    return user_cache_path("synap-verify")


def fingerprint(*paths: Path) -> str:
    """sha256 of files' bytes, or of folders' files (relative names and bytes; bytecode excluded)."""
    digest = hashlib.sha256()
    for path in paths:
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
        for file in files:
            digest.update(str(file.relative_to(path) if file != path else file.name).encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    """A stored cluster: its data directory and the template databases (states) it holds."""

    pgdata: Path
    states: dict[str, float]  # template database -> when a session last used it (epoch seconds)
    inputs: dict[str, str]


class StateCache:
    """A folder of entries ``<key>/{data,manifest.json}`` and the lock that orders their swaps."""

    def __init__(self, root: Path) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / "lock").touch()
        except OSError as exc:
            raise SynapError(f"state cache {root}: {exc.strerror}; pass --synap-cache=PATH (a writable folder) "
                             "or --synap-cache=off") from None
        self.root = root

    @staticmethod
    def key(inputs: Mapping[str, str]) -> str:
        return hashlib.sha256(json.dumps(dict(sorted(inputs.items()))).encode()).hexdigest()[:16]

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        with open(self.root / "lock", "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def reading(self, key: str) -> Iterator[Entry | None]:
        """The entry for ``key`` (or None), held against replacement while the caller copies it."""
        with self._locked(exclusive=False):
            entry = self._entry(self.root / key)
            if entry is not None:
                os.utime(self.root / key / MANIFEST)  # most recently used: pruned last
            yield entry

    def nearest(self, inputs: Mapping[str, str]) -> Entry | None:
        """The most recently used entry of the same server, to say which inputs changed."""
        return next((e for e in self._entries() if e.inputs.get("postgres") == inputs.get("postgres")), None)

    def store(self, key: str, pgdata: Path, states: Mapping[str, float], inputs: Mapping[str, str]) -> Path:
        """Copy a stopped cluster's data directory in under a temporary name, then swap it in. Files the
        session left as it copied them from the entry it replaces are linked to that entry's, not copied."""
        staging = self.root / f"{TEMP}{key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        final = self.root / key
        link_unchanged(pgdata, staging / "data", final / "data")
        manifest = {"key": key, "states": dict(states), "inputs": dict(inputs), "stored": time.time()}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        with self._locked(exclusive=True):
            old = self.root / f"{TEMP}{key}-old-{os.getpid()}"
            if final.exists():
                final.rename(old)
            staging.rename(final)
            shutil.rmtree(old, ignore_errors=True)
            self._prune()
        return final

    def _entry(self, folder: Path) -> Entry | None:
        if folder.name.startswith(TEMP) or not (folder / MANIFEST).is_file():
            return None
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            return Entry(folder / "data", dict(manifest["states"]), dict(manifest["inputs"]))
        except (OSError, ValueError, KeyError, TypeError):  # unreadable or another version's: not an entry
            return None

    def _entries(self) -> list[Entry]:
        """Every entry, the most recently used first."""
        entries = (e for e in map(self._entry, self.root.iterdir()) if e is not None)
        return sorted(entries, key=lambda e: (e.pgdata.parent / MANIFEST).stat().st_mtime, reverse=True)

    def _prune(self) -> None:
        """Keep the KEEP most recently used entries; remove what killed writers left (their pid is gone)."""
        for stale in self._entries()[KEEP:]:
            shutil.rmtree(stale.pgdata.parent, ignore_errors=True)
        for folder in self.root.glob(f"{TEMP}*"):
            pid = folder.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or not alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


def link_unchanged(source: Path, target: Path, previous: Path) -> None:
    """``source`` copied to ``target`` with owners, modes and times kept, except that a file whose size and
    modification time (in nanoseconds) equal those of the same file in ``previous`` becomes a hard link to it.

    Sound because an entry's files never change once stored: a session copies them out (``cp -a`` keeps their
    times), the server writes only its own copies, and every write moves a file's time on; a new entry is a
    new folder. Most of a stored cluster (the template databases, the states the session only cloned) is
    then written once, not again at every store. A file gone from ``previous`` meanwhile is copied."""
    with os.scandir(source) as items:
        os.mkdir(target)
        for item in items:
            here, there = target / item.name, previous / item.name
            info = item.stat(follow_symlinks=False)
            if item.is_dir(follow_symlinks=False):
                link_unchanged(Path(item.path), here, there)
                continue
            try:
                old = there.stat(follow_symlinks=False)
                if (old.st_size, old.st_mtime_ns) == (info.st_size, info.st_mtime_ns):
                    os.link(there, here)
                    continue
            except OSError:
                pass
            shutil.copy2(item.path, here, follow_symlinks=False)
            os.chown(here, info.st_uid, info.st_gid, follow_symlinks=False)
    shutil.copystat(source, target)
    stat = source.stat()
    os.chown(target, stat.st_uid, stat.st_gid)


def copy_tree(source: Path, target: Path) -> None:
    """A data directory copied with owners and modes kept (copy-on-write where the filesystem can)."""
    proc = subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SynapError(f"copying {source} to {target} failed: {proc.stderr.strip()}; "
                         "free disk space or pass --synap-cache=off")
