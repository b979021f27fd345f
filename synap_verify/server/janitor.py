"""Make sure no cluster outlives the test process that started it.

``spawn_janitor`` starts a small detached process that waits for the owner's PID to vanish (normal end,
Ctrl-C, SIGKILL, crash) and then stops the cluster and deletes its folder. A normal end stops the
cluster itself and kills the janitor; the janitor is for every other ending.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

DATADIR_PREFIX = "synap-pg-"


def spawn_janitor(owner_pid: int, root: Path, bindir: Path, user: str | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "synap_verify.server.janitor", str(owner_pid), str(root), str(bindir), user or ""],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # survives a Ctrl-C sent to the test process group
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(owner_pid: int, root: Path, bindir: Path, user: str | None) -> None:
    from synap_verify.server.executor import stop_cluster

    while alive(owner_pid) and root.exists():
        time.sleep(0.2)
    if root.exists():
        stop_cluster(bindir, root, user)


if __name__ == "__main__":
    pid, folder, bins, run_as = sys.argv[1:5]
    watch(int(pid), Path(folder), Path(bins), run_as or None)
