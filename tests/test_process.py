"""Process identity and log files of the local backend."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from rollwise.backends.process import ManagedProcess, rotate_log, tail


def test_copy_truncate_rotation_keeps_the_writer_appending(tmp_path: Path) -> None:
    log = tmp_path / "r1-0.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, b"old line\n" * 200)
    assert rotate_log(log, max_bytes=1000, keep=2)
    os.write(fd, b"new line\n")
    os.close(fd)
    assert log.read_bytes() == b"new line\n"
    assert (tmp_path / "r1-0.log.1").read_bytes().count(b"old line") == 200
    assert not rotate_log(log, max_bytes=1000, keep=2)
    assert tail(log, 5) == ["new line"]


def test_adoption_requires_the_same_start_time(tmp_path: Path) -> None:
    proc = ManagedProcess.start(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        env=dict(os.environ),
        cwd=None,
        log_path=tmp_path / "p.log",
    )
    try:
        assert ManagedProcess.adopt(proc.pid, proc.start_time) is not None
        assert ManagedProcess.adopt(proc.pid, proc.start_time - 10) is None
    finally:
        asyncio.run(proc.stop(2.0))
    assert not proc.alive()
    assert ManagedProcess.adopt(proc.pid, proc.start_time) is None
