"""Where each A2A conversation lives: task and context ids → the replica that answered them.

a2a-sdk keeps an agent's tasks in the memory of the replica that made them (its
``InMemoryTaskStore``), so a follow-up (``GetTask``, a second turn naming ``taskId``) must
reach that replica. The proxy learns the ids from the answers and pins the follow-ups.

The map is shared by every proxy worker and outlives a proxy: it is a file per app listener
in the proxy's conversation directory (``<state>/conversations/`` under a controller),
mapped into each worker's memory. A follow-up that a worker other than the one that saw the
answer accepts, or a proxy started after the one that saw it, reads the same slots.

A slot is 16 bytes: the key (8 bytes of BLAKE2b of the id), the replica (CRC-32 of its
address) and when it was last used (whole seconds of ``CLOCK_MONOTONIC``, which every process
of the machine reads alike). Slots are found by linear probing within ``PROBE`` slots of the
key's home; a key not used for ``ttl`` seconds is expired, and when every slot of a window is
live the least recently used one is taken (an eviction). The file holds four slots per
conversation asked for (a task and a context key each, at half load), so
``maxConversations: 100000`` costs 6.4 MB (docs/performance.md). Writes are single 16-byte
stores: a reader in another process sees a slot either before or after a write.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import struct
import zlib
from pathlib import Path

__all__ = ["ConversationMap", "address_code", "key_of", "map_path"]

MAGIC = b"rollwise-conv-v1"
HEADER = struct.Struct("<16sQ")  # magic, number of slots
HEADER_BYTES = 64
SLOT = struct.Struct("<8sII")  # key, replica, last used
SLOT_BYTES = SLOT.size
PROBE = 16
EMPTY = bytes(8)
SLOTS_PER_CONVERSATION = 4


def key_of(kind: bytes, value: str) -> bytes:
    """A task's (``kind`` ``t``) or context's (``c``) key: 8 bytes, never all zero."""
    digest = hashlib.blake2b(kind + value.encode(), digest_size=8).digest()
    return digest if digest != EMPTY else b"\x00" * 7 + b"\x01"


def address_code(address: str) -> int:
    """A replica's code in a slot: its address' CRC-32, stable across processes."""
    return zlib.crc32(address.encode()) or 1


def map_path(directory: Path, app: str) -> Path:
    return directory / f"{app}.conversations"


def _slots_for(conversations: int) -> int:
    wanted = max(PROBE, conversations * SLOTS_PER_CONVERSATION)
    return 1 << (wanted - 1).bit_length()


class ConversationMap:
    """One app's shared map; ``capacity`` conversations at most (older ones are evicted)."""

    __slots__ = ("evictions", "mask", "memory", "path", "slots")

    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.slots = _slots_for(capacity)
        self.mask = self.slots - 1
        self.evictions = 0
        size = HEADER_BYTES + self.slots * SLOT_BYTES
        self.memory = _open(path, size, self.slots)

    @property
    def capacity(self) -> int:
        return self.slots // SLOTS_PER_CONVERSATION

    @staticmethod
    def capacity_for(conversations: int) -> int:
        """The capacity a map asked for ``conversations`` has (its slots are a power of 2)."""
        return _slots_for(conversations) // SLOTS_PER_CONVERSATION

    def close(self) -> None:
        with contextlib.suppress(BufferError):
            self.memory.close()

    def find(self, key: bytes, now: int, ttl: int) -> int | None:
        """The replica code of ``key``, ``None`` when unknown or unused for ``ttl``."""
        memory, home, mask = self.memory, int.from_bytes(key[:4], "little"), self.mask
        for step in range(PROBE):
            at = HEADER_BYTES + ((home + step) & mask) * SLOT_BYTES
            found, replica, used = SLOT.unpack_from(memory, at)
            if found == key:
                return replica if now - used <= ttl else None
            if found == EMPTY:
                return None
        return None

    def put(self, key: bytes, replica: int, now: int, ttl: int) -> None:
        """``key`` lives on ``replica``, used ``now``."""
        memory, home, mask = self.memory, int.from_bytes(key[:4], "little"), self.mask
        free = -1
        oldest, oldest_at = -1, 0
        for step in range(PROBE):
            at = HEADER_BYTES + ((home + step) & mask) * SLOT_BYTES
            found, was, used = SLOT.unpack_from(memory, at)
            if found == key:
                if was != replica or used != now:
                    SLOT.pack_into(memory, at, key, replica, now)
                return
            if found == EMPTY:
                SLOT.pack_into(memory, at if free < 0 else free, key, replica, now)
                return
            if free < 0 and now - used > ttl:
                free = at
            elif oldest < 0 or used < oldest:
                oldest, oldest_at = used, at
        if free < 0:
            free = oldest_at
            self.evictions += 1
        SLOT.pack_into(memory, free, key, replica, now)


def _open(path: Path, size: int, slots: int) -> mmap.mmap:
    """The map file of this size, made when missing or of another size (written beside and
    renamed, so that no process maps a half-made file)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        fd = -1
    if fd >= 0:
        header = os.pread(fd, HEADER.size, 0)
        if os.fstat(fd).st_size == size and header == HEADER.pack(MAGIC, slots):
            return _mapped(fd, size)
        os.close(fd)
    fresh = path.with_name(f"{path.name}.{os.getpid()}")
    fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(fd, size)  # zero-filled and sparse: pages exist once a slot is written
    os.pwrite(fd, HEADER.pack(MAGIC, slots), 0)
    os.replace(fresh, path)
    return _mapped(fd, size)


def _mapped(fd: int, size: int) -> mmap.mmap:
    try:
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
