"""One writer per run directory: ``RUN/.lock`` holds the writing process's pid and host.

``ganzoo train`` (rank 0 under torchrun) takes the lock before it looks at the run and
keeps it until it exits, so a second ``train`` into the same ``--out`` (new, ``--resume``
or ``--restart``) is refused instead of interleaving its log lines and checkpoints with
the first one's. The lock is an ``flock(2)`` on the file, which the kernel drops when
the holder dies (SIGKILL, OOM killer): a lock file left behind by a dead process on this
host is stale and taken over with a warning. A lock recorded by another host cannot be
checked from here and is refused with the file to delete. Where ``flock`` is not
available (some network file systems) the pid check alone decides.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import GanzooError

__all__ = ["RunLock", "LOCK_NAME", "lock_holder"]

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid check alone
    fcntl = None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc/PID/stat`` field 22),
    which tells a live holder from a new process that reuses a dead holder's pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces: split after it
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    if start is not None:
        now = _start_time(pid)
        if now is not None and now != start:
            return False  # the pid was reused by another process
    return True


def lock_holder(path: Path) -> dict | None:
    """What a lock file records (pid, host, since, command), or None if it is missing or empty/torn."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def _describe(info: dict) -> str:
    since = info.get("since")
    when = time.strftime(" since %Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, (int, float)) else ""
    return f"pid {info.get('pid')} on host {info.get('host')!s}{when}"


class RunLock:
    """Context manager: hold ``RUN/.lock`` while a run directory is written.

    >>> with RunLock("runs/x"):   # doctest: +SKIP
    ...     ...                    # train; a second process gets a GanzooError naming this one
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self._created_dir = False

    # the record this process writes
    def _record(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "since": round(time.time(), 3),
                "pid_start": _start_time(os.getpid()), "command": " ".join(sys.argv)[:500]}

    def _refuse(self, info: dict | None, why: str = "") -> None:
        who = _describe(info) if info else "another process"
        raise GanzooError(f"{self.run_dir} is being written by `ganzoo train` ({who}){why}; wait for it to finish "
                          f"or stop it, or train into another --out (two trainings into one folder would mix "
                          f"their checkpoints)")

    def acquire(self) -> "RunLock":
        if not self.run_dir.exists():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._created_dir = True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            flocked = False
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    flocked = True
                except BlockingIOError:
                    os.close(fd)
                    self._refuse(lock_holder(self.path))
                except OSError as exc:
                    if exc.errno not in (errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                        os.close(fd)
                        raise
            # the file locked must still be the one at the path (a holder that released it in
            # between unlinked it: lock the new one)
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            break
        old = lock_holder(self.path)
        if old is not None and old.get("pid") != os.getpid():
            here = old.get("host") == socket.gethostname()
            if not here:
                os.close(fd)
                self._refuse(old, f"; that host cannot be checked from here: if that training is no longer "
                                  f"running, delete {self.path}")
            if _alive(old["pid"], old.get("pid_start")) and not flocked:
                os.close(fd)
                self._refuse(old)
            # flock taken (the kernel drops it when its holder dies) or the pid is gone: stale
            print(f"ganzoo: warning: {self.path} was left by {_describe(old)}, which is no longer running; "
                  f"taking it over", file=sys.stderr)
        data = (json.dumps(self._record()) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            try:
                if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                    self.path.unlink()
            except FileNotFoundError:
                pass
        finally:
            os.close(self._fd)  # drops the flock
            self._fd = None
        if self._created_dir:
            try:
                self.run_dir.rmdir()  # nothing was written: leave no empty folder behind
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
