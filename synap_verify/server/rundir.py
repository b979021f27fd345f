"""Where a local cluster's files live while it runs: in memory when the machine has room, else on disk.

A local cluster is throwaway (``fsync=off``; the state cache keeps what outlives it), and most of a session's
time on a small scale goes into copying files: every suite's database is ``CREATE DATABASE ... TEMPLATE``,
a copy of the state's files, and a session on a cached state starts on a copy of its data directory. On a
virtual disk 85 MB took 0.9 s to clone and the 237 MB entry 2.1 s to copy; in a RAM filesystem 0.06 s and
0.36 s (docs/decisions.md, "The cluster runs in memory when it fits"). So ``auto`` puts the cluster in ``/dev/shm`` when it
fits there with room to spare, and on the system's temporary folder otherwise (a container's 64 MB
``/dev/shm``, a prod-scale load); a folder given by the user is used as it is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

AUTO = "auto"
RAM_FOLDER = Path("/dev/shm")
WAL_ROOM = 4 << 30  # the executor's max_wal_size: WAL a bulk load may hold between two checkpoints
# what a session's databases take at each scale, templates and the suites' clones together (small: 85 MB per
# loaded database, up to six alive at once); a prod load never goes to memory on a machine of ordinary size
SESSION_BYTES = {"tiny": 256 << 20, "small": 1 << 30, "prod": 64 << 30}


def parent_folder(setting: str, need: int) -> Path:
    """The folder to create the cluster's folder in."""
    if setting != AUTO:
        return Path(setting)
    return RAM_FOLDER if fits_in_memory(need) else Path(tempfile.gettempdir())


def fits_in_memory(need: int) -> bool:
    """Whether ``need`` bytes (plus the WAL's room) fit in the RAM filesystem and in half the free memory:
    a tmpfs's pages are memory, and the server and the suites need the other half."""
    if not (RAM_FOLDER.is_dir() and os.access(RAM_FOLDER, os.W_OK | os.X_OK)):
        return False
    total = need + WAL_ROOM
    return total <= shutil.disk_usage(RAM_FOLDER).free and total <= available_memory() // 2


def available_memory() -> int:
    """``MemAvailable`` of /proc/meminfo in bytes (0 where there is none: then nothing goes to memory)."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return 0
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(fields.get("MemAvailable", "0 kB").split()[0]) * 1024


def session_bytes(scale: str, copy_from: Path | None) -> int:
    """What a session on ``scale`` will need: the scale's estimate, or four times the cached entry it starts
    from (the entry and its clones) when that is more."""
    estimate = SESSION_BYTES.get(scale, SESSION_BYTES["prod"])
    if copy_from is None:
        return estimate
    size = sum(p.stat().st_size for p in copy_from.rglob("*") if p.is_file())
    return max(4 * size, estimate)
