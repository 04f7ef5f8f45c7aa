"""``--record FILE``: one JSON line per request, for offline replay of an analysis.

Lines are gathered in memory and written whole with one ``write(2)`` on an ``O_APPEND``
descriptor. Appends of whole buffers never interleave on a local file system, so several proxy
workers can share one file without ever cutting a line in two (a buffered ``open()`` would
flush at arbitrary byte offsets).
"""

from __future__ import annotations

import os

__all__ = ["Recorder"]

FLUSH_LINES = 512


class Recorder:
    __slots__ = ("fd", "lines")

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        data = "".join(self.lines).encode()
        self.lines = []
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        self.flush()
        os.close(self.fd)
