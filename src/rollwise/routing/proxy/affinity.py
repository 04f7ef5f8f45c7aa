"""Where each A2A conversation lives: task and context ids → the replica that answered them.

a2a-sdk keeps an agent's tasks in the memory of the replica that made them (its
``InMemoryTaskStore``), so a follow-up (``GetTask``, a second turn naming ``taskId``) must
reach that replica. The proxy learns the ids from the answers and pins the follow-ups.

The map is shared by every proxy worker and outlives a proxy: it is a file per app listener
in the proxy's conversation directory (``<state>/conversations/`` under a controller),
mapped into each worker's memory. A follow-up that a worker other than the one that saw the
answer accepts, or a proxy started after the one that saw it, reads the same slots.

A slot is two 64-bit words: the key (the first 8 bytes of the id's BLAKE2b, never 0: 0 is
an empty slot) and its value, the replica (CRC-32 of its address) in the high half and when
the key was last used in the low half (whole seconds of ``CLOCK_MONOTONIC``, which every
process of the machine reads alike). A writer stores the value before the key, each in one
aligned 8-byte store, so a reader in another process never sees a key with a value that is
not its own. Slots are found by linear probing within ``PROBE`` slots of the key's home; a
key not used for ``ttl`` seconds is expired, and when every slot of a window is live the
least recently used one is taken (an eviction). The file holds four slots per conversation
asked for (a task and a context key each, at half load), rounded up to a power of two:
``maxConversations: 100000`` is 524,288 slots, 8 MiB (docs/performance.md).
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

MAGIC = b"rollwise-conv-v2"
HEADER = struct.Struct("<16sQ")  # magic, number of slots
HEADER_WORDS = 8  # 64 bytes
PROBE = 16
SLOTS_PER_CONVERSATION = 4
_LOW = 0xFFFFFFFF


def key_of(kind: bytes, value: str) -> int:
    """A task's (``kind`` ``t``) or context's (``c``) key: 64 bits, never 0."""
    digest = hashlib.blake2b(kind + value.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


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

    __slots__ = ("evictions", "mask", "memory", "path", "slots", "words")

    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.slots = _slots_for(capacity)
        self.mask = self.slots - 1
        self.evictions = 0
        size = (HEADER_WORDS + 2 * self.slots) * 8
        self.memory = _open(path, size, self.slots)
        self.words = memoryview(self.memory).cast("Q")

    @property
    def capacity(self) -> int:
        return self.slots // SLOTS_PER_CONVERSATION

    @staticmethod
    def capacity_for(conversations: int) -> int:
        """The capacity a map asked for ``conversations`` has (its slots are a power of 2)."""
        return _slots_for(conversations) // SLOTS_PER_CONVERSATION

    def close(self) -> None:
        self.words.release()
        with contextlib.suppress(BufferError):
            self.memory.close()

    def find(self, key: int, now: int, ttl: int) -> int | None:
        """The replica code of ``key``, ``None`` when unknown or unused for ``ttl``."""
        words, mask = self.words, self.mask
        for step in range(PROBE):
            at = HEADER_WORDS + 2 * ((key + step) & mask)
            found = words[at]
            if found == key:
                value = words[at + 1]
                return value >> 32 if now - (value & _LOW) <= ttl else None
            if not found:
                return None
        return None

    def put(self, key: int, replica: int, now: int, ttl: int) -> None:
        """``key`` lives on ``replica``, used ``now``."""
        words, mask = self.words, self.mask
        value = replica << 32 | now
        at = HEADER_WORDS + 2 * (key & mask)
        if not words[at]:  # its home is free: the usual case below half load
            words[at + 1] = value
            words[at] = key
            return
        free = oldest_at = -1
        oldest = 0
        for step in range(PROBE):
            at = HEADER_WORDS + 2 * ((key + step) & mask)
            found = words[at]
            if found == key:
                if words[at + 1] != value:
                    words[at + 1] = value
                return
            if not found:
                if free < 0:
                    words[at + 1] = value
                    words[at] = key
                    return
                break
            used = words[at + 1] & _LOW
            if free < 0 and now - used > ttl:
                free = at
            elif oldest_at < 0 or used < oldest:
                oldest, oldest_at = used, at
        if free < 0:
            free = oldest_at
            self.evictions += 1
        words[free] = 0  # emptied while its value changes, then given the new key
        words[free + 1] = value
        words[free] = key


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
