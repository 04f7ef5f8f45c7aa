"""OS processes the controller starts and may later re-adopt.

A replica or the proxy is started in its own session, so that it outlives a controller killed
with -9 and ignores the terminal's Ctrl-C; its output goes straight to a log file (not a pipe
that would break when the controller dies). Identity is (pid, start time): a recycled pid is
never mistaken for the process that was started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

__all__ = ["ManagedProcess", "kill_marked", "rotate_log", "tail"]

# Linux 5.3+ (Python 3.9+); elsewhere exits are polled
_pidfd_open = getattr(os, "pidfd_open", None)

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 3


class ManagedProcess:
    """A process started here (``popen`` set) or adopted after a controller restart."""

    def __init__(self, pid: int, start_time: float, popen: subprocess.Popen[bytes] | None) -> None:
        self.pid = pid
        self.start_time = start_time
        self.popen = popen
        self.exit_code: int | None = None
        self._pidfd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, on_exit: Callable[[], None]) -> bool:
        """Call ``on_exit`` from the running event loop once the process exits, without
        polling (a pidfd in the loop's selector). ``False`` where the kernel has no pidfd:
        then the caller polls ``alive()``."""
        if _pidfd_open is None or self._pidfd is not None:
            return self._pidfd is not None
        try:
            fd = _pidfd_open(self.pid)
        except OSError:
            return False
        self._pidfd = fd
        self._loop = asyncio.get_running_loop()

        def readable() -> None:
            self.unwatch()
            on_exit()

        self._loop.add_reader(fd, readable)
        return True

    def unwatch(self) -> None:
        fd, self._pidfd = self._pidfd, None
        loop, self._loop = self._loop, None
        if fd is None:
            return
        if loop is not None and not loop.is_closed():
            loop.remove_reader(fd)
        os.close(fd)

    @property
    def watched(self) -> bool:
        return self._pidfd is not None

    @classmethod
    def start(
        cls, argv: list[str], env: dict[str, str], cwd: str | None, log_path: Path
    ) -> ManagedProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        try:
            started = psutil.Process(popen.pid).create_time()
        except psutil.Error:
            started = time.time()
        return cls(popen.pid, started, popen)

    @classmethod
    def adopt(cls, pid: int, start_time: float) -> ManagedProcess | None:
        """The process ``pid`` if it is still the one started at ``start_time``."""
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - start_time) > 0.05 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return cls(pid, start_time, None)

    def alive(self) -> bool:
        if self.popen is not None:
            code = self.popen.poll()
            if code is not None:
                self.exit_code = code
                return False
            return True
        try:
            proc = psutil.Process(self.pid)
            return (
                abs(proc.create_time() - self.start_time) <= 0.05
                and proc.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False

    def listens_on(self, port: int) -> bool:
        try:
            conns = psutil.Process(self.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)

    async def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``grace_s``."""
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        # Polled: an adopted process is not our child, so there is nothing to wait on.
        while self.alive() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self.alive():
            self.signal(signal.SIGKILL)
            while self.alive():  # noqa: ASYNC110
                await asyncio.sleep(0.02)


def kill_marked(name: str, value: str, keep: set[int]) -> list[int]:
    """Kill every process of ours whose environment has ``name=value``, but those in
    ``keep`` (and this one); the pids killed."""
    killed = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid in keep or proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(name) != value:
                continue
            proc.kill()
        except psutil.Error:
            continue
        killed.append(proc.pid)
    return killed


def rotate_log(path: Path, max_bytes: int = LOG_MAX_BYTES, keep: int = LOG_KEEP) -> bool:
    """Copy-truncate rotation: the writer keeps its O_APPEND descriptor, no signal needed."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{i + 1}"))
    with open(path, "rb") as src, open(path.with_name(f"{path.name}.1"), "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    os.truncate(path, 0)
    return True


def tail(path: Path, lines: int = 10) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]


def read_new(path: Path, offset: int) -> tuple[list[str], int]:
    """The lines written to ``path`` since ``offset`` (bytes), and the new offset; a file
    that shrank (rotated) is read from its start."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [], offset
    start = offset if size >= offset else 0
    if size <= start:
        return [], size
    with open(path, "rb") as f:
        f.seek(start)
        chunk = f.read(size - start).decode("utf-8", "replace")
    return chunk.splitlines(), size
