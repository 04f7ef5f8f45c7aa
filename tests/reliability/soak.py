"""The fault-injection soak: rollouts of every kind under steady load while the controller,
the proxy (alone, or with the controller) and replicas are killed with -9 at random moments,
and the controller is restarted (SIGHUP, as ``rollwise restart`` does) with other proxy
options, which replaces the proxy; invariants checked after each.

A rollout is one of: a canary promoted through its steps, a canary aborted at its pause, a
blue-green swap, an undo. During each, 2-5 faults strike at random moments of its first
seconds. After each: the app settles with one revision taking every request (or its rollout
resumes and then settles), the history holds every revision and the events never go back,
the controller answers. At the end: nothing of the run is left running. Load goes through
the public listener all along; a failed request is excused only if it was in flight within
a fault's window on the data plane (a killed proxy, a killed replica); any other failure,
during moves between healthy revisions, a controller's death or a proxy replacement, is a
violation.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from rollwise.backends.ports import free_port
from rollwise.client import AdminClient
from rollwise.errors import RollwiseError
from rollwise.store import Store

from ..conftest import stop_everything, write_spec
from ..helpers import start_controller

APP = "/apps/sample-agent"
DATA_PLANE_WINDOW_S = 2.0  # a killed proxy is back within 1 s; a replica is ejected in < 2 s


@dataclass
class Report:
    rollouts: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    failed: int = 0
    excused: int = 0
    violations: list[str] = field(default_factory=list)
    unexcused: list[str] = field(default_factory=list)  # the first failures outside windows
    recovery_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        recover = sorted(self.recovery_s)
        return {
            "rollouts": self.rollouts,
            "kinds": self.kinds,
            "faults": self.faults,
            "faults_total": sum(self.faults.values()),
            "requests": self.requests,
            "failed_requests": self.failed,
            "failed_in_fault_windows": self.excused,
            "failed_outside_fault_windows": self.failed - self.excused,
            "violations": self.violations,
            "unexcused": self.unexcused,
            "settle_after_last_fault_p50_s": round(recover[len(recover) // 2], 2)
            if recover
            else None,
            "settle_after_last_fault_max_s": round(recover[-1], 2) if recover else None,
            "seconds": round(self.seconds, 1),
        }


class Load:
    """GET /healthz at a steady rate in a thread; every request's start, end and outcome."""

    def __init__(self, url: str, rate: float = 40.0) -> None:
        self.url = url
        self.rate = rate
        self.results: list[tuple[float, float, str]] = []  # start, end, what failed ("": ok)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = client.get(self.url + "/healthz").status_code
                    why = "" if status == 200 else str(status)
                except httpx.HTTPError as exc:
                    why = type(exc).__name__
                self.results.append((started, time.monotonic(), why))
                next_at += 1.0 / self.rate
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


class Soak:
    def __init__(self, workdir: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.state = workdir / "state"
        self.spec_file = workdir / "rollwise.yaml"
        self.record = workdir / "requests.jsonl"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.report = Report()
        self.windows: list[float] = []  # start times of data-plane faults
        self.struck: list[tuple[float, str]] = []  # every fault: when, what
        self.version = 0
        self.events_seen = 0
        self.client = AdminClient(self.state, timeout=10.0)
        self.log = os.environ.get("ROLLWISE_SOAK_LOG", "") != ""
        self.workers = 1  # the proxy's: a restart with the other count replaces the proxy

    def say(self, text: str) -> None:
        if self.log:
            print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    # the controller and its API, tolerant of a controller that is being restarted

    def start(self) -> None:
        options = ("--record", str(self.record), "--proxy-workers", str(self.workers))
        start_controller(self.state, *options)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.client.request(method, APP + path, **kwargs)
            except RollwiseError as exc:
                if "no controller answers" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def view(self) -> dict[str, Any]:
        return dict(self.api("GET", ""))

    def apply(self, strategy: dict[str, Any]) -> None:
        write_spec(self.spec_file, self.port, replicas=2, smoke_tests=[])
        spec = yaml.safe_load(self.spec_file.read_text())
        spec["spec"]["strategy"] = strategy
        spec["spec"]["revisionHistoryLimit"] = 1000
        spec["spec"]["template"]["readiness"]["interval"] = "200ms"
        from rollwise.spec import spec_from_dict

        body = {
            "spec": spec_from_dict(spec).model_dump(mode="json", by_alias=True),
            "base_dir": str(self.spec_file.parent),
            "version": None,
        }
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.request("PUT", "/apps", json=body)
            except RollwiseError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            else:
                return

    def wait(self, check: Any, what: str, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(RollwiseError, httpx.HTTPError):
                view = self.view()
                if check(view):
                    return view
            time.sleep(0.05)
        self.report.violations.append(
            f"{what}: not reached in {timeout:.0f}s "
            f"(last: {view.get('phase')} {view.get('message')})"
        )
        return view

    def deploy(self) -> int:
        self.version += 1
        answer = self.api("POST", "/deploy", json={"version": f"1.{self.version}.0", "set": []})
        return int(answer["revision"])

    # faults

    def _pids(self) -> dict[str, list[int]]:
        store = Store(self.state / "state.db")
        try:
            proxy = store.get_kv("proxy")
            replicas = [r.pid for r in store.replicas()]
        finally:
            store.close()
        controller = []
        with contextlib.suppress(OSError, ValueError):
            controller = [int((self.state / "controller.pid").read_text())]
        return {
            "proxy": [int(proxy["pid"])] if proxy else [],
            "replica": replicas,
            "controller": controller,
        }

    def _spare_replicas(self) -> list[int]:
        """Replicas whose revision has another ready one: killing one is a fault the data
        plane must absorb (retry, eject, restart), not an outage of the revision."""
        try:
            view = self.client.request("GET", APP)
        except RollwiseError:
            return []
        spare = []
        for revision in view["revisions"]:
            ready = [r["pid"] for r in revision["health"]["replicas"] if r["state"] == "ready"]
            if len(ready) >= 2:
                spare += [p for p in ready if p]
        return spare

    def fault(self) -> None:
        kind = self.rng.choice(["controller", "proxy", "replica", "replica", "both", "restart"])
        if kind == "both":
            self._double_fault()
            return
        if kind == "restart":
            self._replace_proxy()
            return
        pids = self._spare_replicas() if kind == "replica" else self._pids()[kind]
        if not pids:
            return
        pid = self.rng.choice(pids)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self.report.faults[kind] = self.report.faults.get(kind, 0) + 1
        self.say(f"  kill -9 {kind} {pid}")
        self.struck.append((time.monotonic(), kind))
        if kind == "controller":
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(10)
            self.start()
            self._extend_open_window()
        else:
            self.windows.append(time.monotonic())

    def _double_fault(self) -> None:
        """kill -9 of the controller and the proxy together: nothing holds the listeners
        until the controller is back (as its supervisor brings it back), a data-plane fault
        that lasts until the new controller has started a proxy."""
        pids = self._pids()
        if not pids["controller"] or not pids["proxy"]:
            return
        for pid in (pids["proxy"][0], pids["controller"][0]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.report.faults["both"] = self.report.faults.get("both", 0) + 1
        self.say(f"  kill -9 controller {pids['controller'][0]} and proxy {pids['proxy'][0]}")
        self.struck.append((time.monotonic(), "both"))
        self.windows.append(time.monotonic())
        with contextlib.suppress(psutil.Error):
            psutil.Process(pids["controller"][0]).wait(10)
        self.start()
        self._extend_open_window()

    def _extend_open_window(self) -> None:
        """A data-plane fault still open when the controller went away (killed, or leaving
        while it restarted a killed proxy) lasts until the new controller has restored it
        (restarted the proxy, pushed its routes, the replicas)."""
        now = time.monotonic()
        if self.windows and now - self.windows[-1] < 2 * DATA_PLANE_WINDOW_S:
            # windows end to end from the fault to now: the restore may take longer than one
            while self.windows[-1] < now:
                self.windows.append(min(self.windows[-1] + DATA_PLANE_WINDOW_S, now))

    def _replace_proxy(self) -> None:
        """The controller leaves (SIGHUP) and comes back with the other proxy worker count:
        it replaces the proxy. Not a data-plane fault: no request may fail."""
        pids = self._pids()
        if not pids["controller"]:
            return
        controller = pids["controller"][0]
        with contextlib.suppress(ProcessLookupError):
            os.kill(controller, signal.SIGHUP)
        with contextlib.suppress(psutil.Error):
            psutil.Process(controller).wait(30)
        self.workers = 3 - self.workers
        self.report.faults["restart"] = self.report.faults.get("restart", 0) + 1
        self.say(f"  restart {controller} with --proxy-workers {self.workers}")
        self.struck.append((time.monotonic(), "restart"))
        self.start()
        self._extend_open_window()

    def strike(self) -> float:
        """2-5 faults at random moments of the next 3 s; returns when the last struck."""
        for _ in range(self.rng.randint(2, 5)):
            time.sleep(self.rng.uniform(0.0, 0.7))
            for _attempt in range(5):  # a replica fault needs a spare replica: try again
                before = sum(self.report.faults.values())
                self.fault()
                if sum(self.report.faults.values()) > before:
                    break
        return time.monotonic()

    # rollouts

    def settled(self, view: dict[str, Any], revision: int | None = None) -> bool:
        weights = {k: v for k, v in view.get("actual_weights", {}).items() if v}
        stable = view.get("stable")
        one = stable is not None and weights == {str(stable): 100}
        # Healthy with no canary, or Degraded after an abort (the aborted canary's number is
        # kept for `retry`; it serves nothing)
        calm = (view.get("phase") == "Healthy" and view.get("canary") is None) or (
            view.get("phase") == "Degraded"
        )
        return bool(one and calm and (revision is None or stable == revision))

    def promote(self) -> None:
        self.apply(
            {
                "canary": {
                    "steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}],
                    "scaleDownDelaySeconds": "5s",
                }
            }
        )
        revision = self.deploy()
        last = self.strike()
        self.wait(lambda v: self.settled(v, revision), f"promote of revision {revision}")
        self.report.recovery_s.append(time.monotonic() - last)

    def abort(self) -> None:
        self.apply(
            {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": "5s"}}
        )
        before = self.view()["stable"]
        revision = self.deploy()
        self.wait(
            lambda v: v.get("phase") == "Paused" and v.get("canary") == revision, "canary paused"
        )
        self.api("POST", "/abort")
        last = self.strike()
        self.wait(lambda v: self.settled(v, before), f"abort of revision {revision}")
        self.report.recovery_s.append(time.monotonic() - last)

    def blue_green(self) -> None:
        self.apply({"blueGreen": {"autoPromotionEnabled": True, "scaleDownDelaySeconds": "5s"}})
        revision = self.deploy()
        last = self.strike()
        self.wait(lambda v: self.settled(v, revision), f"blue-green swap to revision {revision}")
        self.report.recovery_s.append(time.monotonic() - last)

    def undo(self) -> None:
        view = self.view()
        previous = [r["number"] for r in view["revisions"] if r["number"] != view["stable"]]
        if not previous:
            self.promote()
            return
        target = max(previous)
        self.api("POST", "/undo", json={"to_revision": target})
        last = self.strike()
        self.wait(lambda v: self.settled(v, target), f"undo to revision {target}")
        self.report.recovery_s.append(time.monotonic() - last)

    def check_history(self) -> None:
        history = self.api("GET", "/history")
        numbers = [h["revision"] for h in history]
        if numbers != list(range(1, len(numbers) + 1)) or len(numbers) != self.version + 1:
            self.report.violations.append(f"history lost or reordered revisions: {numbers}")
        events = self.api("GET", "/events")  # the newest
        ids = [e["id"] for e in events]
        if ids != sorted(ids) or (ids and ids[-1] < self.events_seen):
            self.report.violations.append("events went back")
        self.events_seen = ids[-1] if ids else 0

    def run(self, rollouts: int) -> Report:
        began = time.monotonic()
        self.start()
        try:
            self.apply({"canary": {"steps": []}})
            self.api("POST", "/deploy", json={"version": "1.0.0", "set": []})
            self.wait(lambda v: self.settled(v, 1), "first release")
            kinds = {
                "promote": self.promote,
                "abort": self.abort,
                "blue-green": self.blue_green,
                "undo": self.undo,
            }
            with Load(self.url) as load:
                for _ in range(rollouts):
                    kind = self.rng.choice(list(kinds))
                    self.say(f"rollout {self.report.rollouts + 1}: {kind}")
                    kinds[kind]()
                    self.report.kinds[kind] = self.report.kinds.get(kind, 0) + 1
                    self.report.rollouts += 1
                    self.check_history()
            self.report.requests = len(load.results)
            for started, ended, why in load.results:
                if not why:
                    continue
                self.report.failed += 1
                if any(
                    w - 0.2 <= ended and started <= w + DATA_PLANE_WINDOW_S for w in self.windows
                ):
                    self.report.excused += 1
            outside = self.report.failed - self.report.excused
            for started, ended, why in load.results:
                if not why or any(
                    w - 0.2 <= ended and started <= w + DATA_PLANE_WINDOW_S for w in self.windows
                ):
                    continue
                last = [(round(started - t, 2), k) for t, k in self.struck if t <= ended][-1:]
                told = f"+{started - began:.2f}s {why} ({ended - started:.2f}s); last fault: {last}"
                if len(self.report.unexcused) < 10:  # in the report: a CI failure says what
                    self.report.unexcused.append(told)
                self.say(f"  unexcused failure at {told}")
            if outside:
                self.report.violations.append(
                    f"{outside} requests failed outside data-plane fault windows"
                )
        finally:
            pids = self._pids()
            self.client.close()
            stop_everything(self.state)
        time.sleep(0.5)
        left = [
            p
            for ps in pids.values()
            for p in ps
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if left:
            self.report.violations.append(f"processes left behind: {left}")
        self.report.seconds = time.monotonic() - began
        return self.report
