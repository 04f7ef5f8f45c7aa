"""The proxy's shared conversation map: found, expired, evicted, shared by every process that
maps the file, and bounded, with time given by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rollwise.routing.proxy.affinity import (
    ConversationMap,
    address_code,
    key_of,
    map_path,
)

TTL = 3600


def test_a_key_is_found_until_it_goes_unused_for_its_ttl(tmp_path: Path) -> None:
    conversations = ConversationMap(map_path(tmp_path, "web"), 100)
    task = key_of(b"t", "task-1")
    replica = address_code("127.0.0.1:9001")
    assert conversations.find(task, 1000, TTL) is None
    conversations.put(task, replica, 1000, TTL)
    assert conversations.find(task, 1000 + TTL, TTL) == replica
    conversations.put(task, replica, 2000, TTL)  # used again: its time starts over
    assert conversations.find(task, 2000 + TTL, TTL) == replica
    assert conversations.find(task, 2001 + TTL, TTL) is None
    # a task and a context of the same name are two keys
    assert conversations.find(key_of(b"c", "task-1"), 2000, TTL) is None


def test_a_conversation_that_moves_is_found_where_it_went(tmp_path: Path) -> None:
    conversations = ConversationMap(map_path(tmp_path, "web"), 100)
    key = key_of(b"c", "ctx")
    conversations.put(key, 1, 10, TTL)
    conversations.put(key, 2, 11, TTL)
    assert conversations.find(key, 12, TTL) == 2


def test_another_process_and_a_later_map_read_the_same_slots(tmp_path: Path) -> None:
    path = map_path(tmp_path, "web")
    mine = ConversationMap(path, 1000)
    mine.put(key_of(b"t", "written-here"), 7, 50, TTL)
    script = (
        "import sys; from pathlib import Path\n"
        "from rollwise.routing.proxy.affinity import ConversationMap, key_of\n"
        "m = ConversationMap(Path(sys.argv[1]), 1000)\n"
        "print(m.find(key_of(b't', 'written-here'), 60, 3600))\n"
        "m.put(key_of(b't', 'written-there'), 9, 60, 3600)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "7"
    assert mine.find(key_of(b"t", "written-there"), 61, TTL) == 9  # seen without reopening
    mine.close()
    again = ConversationMap(path, 1000)  # a proxy started later
    assert again.find(key_of(b"t", "written-here"), 61, TTL) == 7


def test_another_size_starts_a_new_map(tmp_path: Path) -> None:
    path = map_path(tmp_path, "web")
    small = ConversationMap(path, 100)
    small.put(key_of(b"t", "a"), 1, 5, TTL)
    bigger = ConversationMap(path, 100_000)
    assert bigger.capacity >= 100_000
    assert bigger.find(key_of(b"t", "a"), 5, TTL) is None
    assert path.stat().st_size == 64 + bigger.slots * 16


def test_the_map_stays_within_its_size_and_evicts_the_least_recently_used(
    tmp_path: Path,
) -> None:
    conversations = ConversationMap(map_path(tmp_path, "web"), 100)
    size = map_path(tmp_path, "web").stat().st_size
    for n in range(10 * conversations.slots):
        conversations.put(key_of(b"t", f"task-{n}"), n % 5 + 1, n, 10**9)
    assert map_path(tmp_path, "web").stat().st_size == size
    assert conversations.evictions > 0
    newest = 10 * conversations.slots - 1
    assert conversations.find(key_of(b"t", f"task-{newest}"), newest, 10**9) == newest % 5 + 1
    assert conversations.find(key_of(b"t", "task-0"), newest, 10**9) is None


def test_an_expired_slot_is_taken_before_a_live_one_is_evicted(tmp_path: Path) -> None:
    conversations = ConversationMap(map_path(tmp_path, "web"), 100)
    keys = [key_of(b"t", f"k{n}") for n in range(conversations.slots // 2)]
    for key in keys:
        conversations.put(key, 1, 0, 10)
    for key in keys:  # as many again, once those expired: their slots are reused
        conversations.put(key_of(b"c", f"{key:x}"), 2, 100, 10)
    assert conversations.evictions == 0
    assert conversations.find(keys[0], 100, 10) is None
