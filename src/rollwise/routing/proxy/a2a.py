"""The proxy's A2A side: what a call names, where its conversation lives, how it ended.

For an app whose table has ``a2a`` (``traffic.protocol: a2a``), each exchange is read
(``a2a/outcomes.py``): the call from the request's body (held until read, ``forward.py``) or
the REST path, the answer as it passes. Its outcome joins its status in deciding whether the
request failed, and is counted per method and outcome. The task and context ids an answer
names are learned into the app's conversation map (``affinity.py``), and a request naming
one goes to the replica that holds it while that replica is in the table, whatever the
weights (draining ones included: that is how a retiring revision keeps its conversations).
When it has left, the request is routed as usual and counted as a lost conversation.

Each replica also keeps its open conversations (``Replica.talks``: their task submitted,
working, or waiting for input or auth) and when each was last asked about: a draining replica
reports those not quiet yet, so that the controller stops it once they are over or quiet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter

from rollwise.a2a.labels import ERROR_OUTCOMES
from rollwise.a2a.outcomes import EventStream, read_answer, read_call, rest_call
from rollwise.routing.proxy.affinity import ConversationMap, key_of, map_path
from rollwise.routing.proxy.forward import A2AState, Exchange
from rollwise.routing.proxy.table import AppRoutes, Replica, RevisionRoute, RoutingTable

__all__ = ["A2ASide", "draining_talks", "forget_quiet"]

_TASK, _CONTEXT = b"t", b"c"


class A2ASide:
    """One proxy worker's A2A bookkeeping: conversation maps and lost conversations."""

    def __init__(self, directory: Path | None, answer_limit: int) -> None:
        self.directory = directory  # shared by the workers and by later proxies
        self.answer_limit = answer_limit  # a JSON answer over this is not read
        self.maps: dict[str, ConversationMap] = {}
        self.lost: dict[str, int] = {}  # per app: follow-ups whose replica had left

    def attach(self, table: RoutingTable) -> None:
        """Each A2A app with affinity gets its conversation map (opened once, kept across
        tables, opened again when its size changes); the others' are closed."""
        wanted: dict[str, int] = {}
        for name, app in table.apps.items():
            if app.a2a is not None and app.a2a.max_conversations:
                wanted[name] = app.a2a.max_conversations
        for name in [n for n in self.maps if n not in wanted]:
            self.maps.pop(name).close()
        if wanted and self.directory is None:
            raise ValueError("this proxy has no --conversations directory for A2A affinity")
        for name, capacity in wanted.items():
            conversations = self.maps.get(name)
            if conversations is None or conversations.capacity != ConversationMap.capacity_for(
                capacity
            ):
                if conversations is not None:
                    conversations.close()
                assert self.directory is not None
                path = map_path(self.directory, name)
                conversations = self.maps[name] = ConversationMap(path, capacity)
            table.apps[name].conversations = conversations

    def close(self) -> None:
        for conversations in self.maps.values():
            with contextlib.suppress(BufferError):
                conversations.close()

    # the request

    def route(self, ex: Exchange, a2a: A2AState, routes: AppRoutes, now: float) -> bool:
        """Read the call of a request held for its body; send one that continues a
        conversation to its replica (``True``: ``ex.revision`` and ``a2a.pin`` are set)."""
        if a2a.waiting:
            a2a.waiting = False
            ex.client.deadline = 0.0  # armed while its body was coming
            if ex.body_done and ex.replay_ok:
                body = ex.body[0] if len(ex.body) == 1 else b"".join(ex.body)
                a2a.call = read_call(body) or rest_call(ex.method, ex.url, body)
        call = a2a.call
        if call is None:
            ex.a2a = None  # not an A2A call: routed and judged as plain HTTP
            return False
        a2a.routes = routes
        if routes.conversations is None or not (call.task or call.context):
            return False
        pinned = self._pinned(routes, call.task, call.context, int(now))
        if pinned is None or (ex.forced is not None and routes.by_key(ex.forced) is not pinned[0]):
            return False
        ex.revision, a2a.pin = pinned
        return True

    def _pinned(
        self, routes: AppRoutes, task: str | None, context: str | None, now: int
    ) -> tuple[RevisionRoute, Replica] | None:
        """The revision and replica holding the conversation a request names, if it is still
        in the table; a known conversation whose replica has left counts as lost."""
        conversations = routes.conversations
        assert conversations is not None
        assert routes.a2a is not None
        ttl = routes.a2a.ttl_s
        for kind, value in ((_TASK, task), (_CONTEXT, context)):
            if value is None:
                continue
            code = conversations.find(key_of(kind, value), now, ttl)
            if code is None:
                continue
            found = routes.by_code.get(code)
            if found is None:
                self.lost[routes.app] = self.lost.get(routes.app, 0) + 1
            return found
        return None

    # the answer

    def read(self, ex: Exchange, a2a: A2AState, body: bytes) -> None:
        """A piece of an A2A answer: kept (a JSON answer, up to the bound) or read (a
        stream's events, whose first ids are learned at once: a client may ask about the
        task while it still streams). Its first piece says which: a JSON document begins
        with ``{`` (cheaper than finding its content type among the headers). A stream's
        first piece is its first event: its latency."""
        answer = a2a.answer
        if answer is not None:
            size = a2a.answer_bytes = a2a.answer_bytes + len(body)
            if size <= self.answer_limit:
                answer.append(body)
            else:
                a2a.answer = None  # too big to read: its status decides
            return
        events = a2a.events
        if events is None:
            if a2a.answer_bytes:
                return  # a JSON answer over the bound
            if body.lstrip()[:1] == b"{":
                a2a.answer, a2a.answer_bytes = [body], len(body)
                return
            events = a2a.events = EventStream()
            a2a.first_byte = perf_counter()
        events.feed(body)
        if not a2a.learned and (events.task or events.context):
            now = ex.client.proxy.clock
            self.remember(ex, a2a, events.task, events.context, events.open, now)

    def judge(self, ex: Exchange, a2a: A2AState, status: int, now: float) -> tuple[bool, str]:
        """Once an A2A answer ended: whether its outcome fails it, and its
        ``"<method> <outcome>"`` (``""``: not an A2A answer, its status decides)."""
        call = a2a.call
        if a2a.events is not None:
            answer = a2a.events.finish()
        elif a2a.answer:
            pieces = a2a.answer
            answer = read_answer(pieces[0] if len(pieces) == 1 else b"".join(pieces), status)
        else:
            return False, ""
        if answer is None or call is None:
            return False, ""
        outcome = answer.outcome
        if outcome not in ERROR_OUTCOMES and status < 400:
            self.remember(ex, a2a, answer.task, answer.context, answer.open, now)
        routes = a2a.routes
        return routes is not None and outcome in routes.failing_outcomes, (
            f"{call.method} {outcome}"
        )

    @staticmethod
    def remember(
        ex: Exchange,
        a2a: A2AState,
        task: str | None,
        context: str | None,
        open_: bool,
        now: float,
    ) -> None:
        """The conversation an answer is about (the call's when the answer names none) lives
        on the replica that answered (learned once per exchange), and is open or over."""
        rep, call, routes = ex.replica, a2a.call, a2a.routes
        if rep is None or routes is None or routes.conversations is None:
            return  # no affinity: nothing to keep
        if call is not None:
            task, context = task or call.task, context or call.context
        task_key = key_of(_TASK, task) if task else 0
        context_key = key_of(_CONTEXT, context) if context else 0
        if not a2a.learned:
            assert routes.a2a is not None
            put, ttl, second = routes.conversations.put, routes.a2a.ttl_s, int(now)
            if task_key:
                put(task_key, rep.code, second, ttl)
            if context_key:
                put(context_key, rep.code, second, ttl)
        a2a.learned = True
        key = context_key or task_key
        if not key:
            return
        if open_:
            rep.talks[key] = now
        else:
            rep.talks.pop(key, None)


def _talking(table: RoutingTable) -> Iterator[tuple[Replica, float]]:
    """Each replica of an A2A app that holds open conversations, and its app's ``idle``."""
    for app in table.apps.values():
        if app.a2a is not None:
            for rev in app.revisions:
                for rep in rev.replicas:
                    if rep.talks:
                        yield rep, app.a2a.idle_s


def draining_talks(table: RoutingTable, now: float) -> dict[str, list[str]]:
    """Each draining replica's conversations that are not quiet yet (their keys, which the
    primary joins across workers: one conversation may have reached more than one)."""
    return {
        rep.address: [f"{k:x}" for k in rep.conversations(now, idle)]
        for rep, idle in _talking(table)
        if rep.draining
    }


def forget_quiet(table: RoutingTable, now: float) -> None:
    """Conversations nobody asked about within their app's ``idle`` leave the replicas'
    lists (they no longer hold a draining replica)."""
    for rep, idle in _talking(table):
        rep.conversations(now, idle)
