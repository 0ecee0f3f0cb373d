"""Randomized invariant checking for bgtasks (used by tests/core/test_invariants.py and
tests/qt/test_invariants_manager.py).

Three parts:

* :func:`make_scenario` turns a seed into a reproducible scenario: task specs
  (priorities, groups, upstream tasks, failures, keys, retries, resources,
  timeouts, policies, exclusive tasks, tasks that stop others or add more) and
  UI-side operations (stops, handle cancels, retries, pauses, priority changes,
  adds while running).
* A run plays a scenario on a level: :class:`CoreLevel` (the Qt-free
  ``Scheduler`` with thread workers, no QApplication) or ``ManagerLevel`` (in
  the test module: the full ``BackgroundTaskManager``).  Everything observable
  is recorded in a :class:`Log`: what each task function saw when it started
  (its kwargs, the states of its upstream tasks, how many functions ran at
  once) and every delivered event, in delivery order.
* :func:`check_run` checks the README's promises on a recorded run and returns
  the list of problems (empty: all held).  It only reads the record, so a test
  can plant a fault in the scheduler and show the checker reports it.
"""

from __future__ import annotations

import collections
import faulthandler
import io
import random
import sys
import threading
import time
import traceback
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any

from bgtasks.core import (
    GROUP_FINISHED,
    TASK_ADDED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_STATE,
    Scheduler,
    current,
    run_worker,
)
from bgtasks.core._context import TaskContext
from bgtasks.core._errors import TaskCancelled
from bgtasks.core._handle import TaskHandle
from bgtasks.core._state import TaskState

TERMINAL = ("completed", "failed", "cancelled")
LIMITS = {"disk": 2, "gpu": 3}
GROUPS = [None, "a", "b", 7, ("t", 1)]


class DictSub(dict):
    """A dict subclass result: it must be merged downstream like a dict."""


# ---------------------------------------------------------------------- scenarios


@dataclass
class Spec:
    i: int
    kind: str = "fn"  # "fn" or "pass" (pass-through)
    behaviour: str = "ok"  # ok, raise, flaky, slow, stop_other, adder
    result: str = "none"  # none, int, list, empty, dict, odict, sub
    ups: list[int] = field(default_factory=list)  # spec indices
    priority: Any = None
    group: Any = None
    own: dict[str, Any] = field(default_factory=dict)
    key: Any = None
    retries: int = 0
    retry_on: str = "OSError"
    backoff: float = 0.002
    flaky_n: int = 0  # raises OSError this many times in all (across runs)
    timeout: float | None = None
    slow_steps: int = 0
    resources: dict[str, int] | None = None
    policy: str | None = None
    exclusive: bool = False
    handle: bool = False
    stop_target: tuple[int, bool, bool] | None = None  # (spec index, up, down); -1: itself
    children: list[int] = field(default_factory=list)
    parent: int | None = None
    retry_budget: int = 0  # retry() when its failed/cancelled end is delivered

    def describe(self) -> str:
        parts = [f"#{self.i} {self.kind}"]
        if self.kind == "fn":
            parts.append(self.behaviour)
        if self.result != "none":
            parts.append(f"result={self.result}")
        if self.ups:
            parts.append(f"ups={self.ups}")
        for name in ("priority", "group", "key", "timeout", "resources", "policy", "stop_target"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        if self.own:
            parts.append(f"own={self.own}")
        if self.retries:
            parts.append(f"retries={self.retries} on {self.retry_on} backoff={self.backoff}")
        if self.flaky_n:
            parts.append(f"flaky_n={self.flaky_n}")
        if self.exclusive:
            parts.append("exclusive")
        if self.handle:
            parts.append("handle")
        if self.children:
            parts.append(f"adds={self.children}")
        if self.parent is not None:
            parts.append(f"added by #{self.parent}")
        if self.retry_budget:
            parts.append(f"retry()x{self.retry_budget}")
        return " ".join(parts)


@dataclass
class Scenario:
    seed: int
    specs: list[Spec]
    initial: int  # specs [0, initial) of the UI ones are added before start
    ui_order: list[int]  # indices the UI adds, in order
    ops: list[tuple[int, tuple]]  # (trigger: terminal events delivered, op)
    max_workers: int

    def describe(self, indices: set[int] | None = None, limit: int = 40) -> str:
        lines = [
            f"seed={self.seed}: {len(self.specs)} tasks ({self.initial} before start), "
            f"{len(self.ops)} UI ops, max_threads={self.max_workers}"
        ]
        chosen = sorted(indices) if indices is not None else range(len(self.specs))
        for n, i in enumerate(chosen):
            if n >= limit:
                lines.append("  ...")
                break
            lines.append("  " + self.specs[i].describe())
        return "\n".join(lines)


def make_scenario(
    seed: int,
    n: int = 500,
    max_workers: int | None = None,
    chain: int = 0,
    features: frozenset[str] | None = None,
) -> Scenario:
    """A reproducible random scenario of about ``n`` tasks (``chain``: add one long chain)."""
    rng = random.Random(seed)
    allow = features

    def on(name: str) -> bool:
        return allow is None or name in allow

    if max_workers is None:
        max_workers = rng.choice([1, 2, 3, 4, 6])
    specs: list[Spec] = []
    ui: list[int] = []
    key_ups: dict[Any, list[int]] = {}

    def pick_ups(below: list[int]) -> list[int]:
        if not below:
            return []
        r = rng.random()
        if r < 0.5:
            return []
        if r < 0.62:
            return [below[-1]]  # chains
        k = rng.choice([1, 1, 2, 3])
        window = below[-30:] if rng.random() < 0.85 else below
        return sorted(set(rng.sample(window, min(k, len(window)))))

    def new_spec(below: list[int], child_of: int | None = None) -> Spec:
        i = len(specs)
        s = Spec(i)
        specs.append(s)
        s.parent = child_of
        s.priority = rng.choice([None, None, 0, 1, -2, 5, 2.5])
        s.group = rng.choice(GROUPS) if rng.random() < 0.93 else ("x", rng.randrange(2))
        s.result = rng.choice(["none", "int", "list", "empty", "dict", "dict", "odict", "sub"])
        r = rng.random()
        if r < 0.25:
            s.own = {f"o{i}": i}
        elif r < 0.45:
            s.own = {f"o{i}": i, "shared": "own"}
        s.ups = pick_ups(below)
        if on("pass") and rng.random() < 0.05:
            s.kind = "pass"
            s.result = "none"
        else:
            weights = {
                "ok": 55, "raise": 7, "flaky": 10 if on("retries") else 0,
                "slow": 7 if on("slow") else 0,
                "stop_other": 6 if on("stop_other") and below else 0,
                "adder": 7 if on("adder") and child_of is None else 0,
            }  # fmt: skip
            s.behaviour = rng.choices(list(weights), list(weights.values()))[0]
        if s.behaviour == "flaky":
            s.flaky_n = rng.choice([1, 1, 2, 3])
            s.retries = rng.choice([0, 1, 2, 3, 3])
            s.retry_on = rng.choice(["OSError", "OSError", "ValueError"])
            s.backoff = rng.choice([0.0, 0.001, 0.003])
        elif on("retries") and rng.random() < 0.05:
            s.retries = rng.choice([1, 2])  # retries of a task that fails for good
            s.backoff = rng.choice([0.0, 0.002])
        if s.behaviour == "slow":
            s.slow_steps = rng.randint(2, 15)
            if on("timeout") and rng.random() < 0.5:
                s.timeout = rng.choice([0.002, 0.004, 0.008, 5.0])
        elif on("timeout") and rng.random() < 0.04:
            s.timeout = 5.0
        if s.behaviour == "stop_other":
            target = rng.choice(below) if rng.random() < 0.85 else -1
            s.stop_target = (target, rng.random() < 0.1, rng.random() < 0.3)
        if on("resources") and rng.random() < 0.15:
            s.resources = rng.choice([{"disk": 1}, {"disk": 2}, {"gpu": 1}, {"gpu": 2, "disk": 1}])
        if on("policy") and rng.random() < 0.1:
            s.policy = "cancel"
        if on("exclusive") and rng.random() < 0.02:
            s.exclusive = True  # latest wins: mostly in groups of few tasks
            if rng.random() < 0.85:
                s.group = ("x", rng.randrange(2))
        if (
            on("keys")
            and child_of is None
            and s.kind == "fn"
            and s.behaviour in ("ok", "raise", "slow", "flaky")
            and rng.random() < 0.07
        ):
            s.key = ("k", rng.randrange(4))
            if s.key in key_ups:  # requests of one key wait for the same tasks
                s.ups = list(key_ups[s.key])
            else:
                key_ups[s.key] = list(s.ups)
        if on("handles") and s.kind == "fn" and rng.random() < 0.3:
            s.handle = True
        if on("retry") and rng.random() < 0.15:
            s.retry_budget = rng.choice([1, 1, 1, 2])
        return s

    chain_range: tuple[int, int] | None = None
    while len(specs) < n:
        if chain and chain_range is None and len(specs) >= n // 3:
            start = len(specs)
            group = ("chain", seed)
            for k in range(chain):
                s = Spec(len(specs), result="dict", group=group)
                s.ups = [len(specs) - 1] if k else []
                specs.append(s)
                ui.append(s.i)
            chain_range = (start, len(specs) - 1)
            continue
        s = new_spec(ui)
        ui.append(s.i)
        if s.behaviour == "adder":
            kids: list[int] = []
            for _ in range(rng.randint(1, 3)):
                below = [j for j in ui if j < s.i][-40:]
                c = new_spec(below + [s.i] + kids, child_of=s.i)
                kids.append(c.i)
            s.children = kids
    initial = max(1, len(ui) // 3)

    # UI operations, triggered by how many terminal events were delivered.
    ops: list[tuple[int, tuple]] = []
    rest = ui[initial:]
    pos = 0
    budget = len(specs)
    chunks = []
    while pos < len(rest):
        k = rng.randint(1, 40)
        chunks.append(rest[pos : pos + k])
        pos += k
    triggers = sorted(rng.randint(0, budget // 2) for _ in chunks)
    ops.extend((t, ("add", chunk)) for t, chunk in zip(triggers, chunks, strict=False))  # in order
    n_ops = max(4, len(specs) // 8)
    kinds = {
        "stop": 12, "stop_group": 1, "cancel": 14 if on("handles") else 0, "retry": 10,
        "set_priority": 12, "set_group_priority": 6, "pause": 4 if on("pause") else 0,
        "stop_all": 0.2 if on("stop_all") else 0,
    }  # fmt: skip
    for _ in range(n_ops):
        kind = rng.choices(list(kinds), list(kinds.values()))[0]
        target = rng.randrange(len(specs))
        if kind == "stop":
            op: tuple = ("stop", target, rng.random() < 0.15, rng.random() < 0.3)
        elif kind == "stop_group":
            op = ("stop_group", rng.choice(GROUPS), False, rng.random() < 0.3)
        elif kind == "cancel":
            op = ("cancel", target)
        elif kind == "retry":
            op = ("retry", target)
        elif kind == "set_priority":
            op = ("set_priority", target, rng.choice([-5, 0, 3, 10]))
        elif kind == "set_group_priority":
            op = ("set_group_priority", rng.choice(GROUPS), rng.choice([-5, 0, 3, 10]))
        elif kind == "pause":
            op = ("pause", rng.randint(1, 4))
        else:
            op = ("stop_all",)
        ops.append((rng.randint(0, budget), op))
    if chain_range is not None:
        head, tail = chain_range
        ops.append((rng.randint(0, budget // 2), ("stop", head, False, True)))
        ops.append((rng.randint(budget // 2, budget), ("retry", tail)))
    ops.sort(key=lambda t: t[0])  # stable: adds stay in order
    return Scenario(seed, specs, initial, ui, ops, max_workers)


def result_of(spec: Spec) -> Any:
    i = spec.i
    kind = spec.result
    if kind == "none":
        return None
    if kind == "int":
        return i
    if kind == "list":
        return [i]
    if kind == "empty":
        return {}
    content = {f"r{i}": i, "shared": f"s{i}"}
    if kind == "dict":
        return content
    if kind == "odict":
        return OrderedDict(content)
    return DictSub(content)


# ---------------------------------------------------------------------- the record


class Log:
    """Everything a run shows, in one place; any thread may write to it."""

    def __init__(self, max_workers: int, limits: dict[str, int]) -> None:
        self.lock = threading.Lock()
        self._seq = 0
        self.max_workers = max_workers
        self.limits = dict(limits)
        self.running = 0
        self.peak = 0
        self.res_running: Counter[str] = Counter()
        self.res_peak: Counter[str] = Counter()
        self.starts: list[dict[str, Any]] = []  # a task function began
        self.ends: dict[int, list[int]] = defaultdict(list)  # uid -> seqs its function returned
        self.stream: list[tuple] = []  # (seq, kind, uid-or-group, ...) in delivery order
        self.adds: dict[int, dict[str, Any]] = {}  # spec index -> how and when it was added
        self.uid_of: dict[int, int] = {}  # spec index -> uid
        self.spec_of: dict[int, int] = {}  # uid -> spec index
        self.handles: dict[int, Any] = {}  # uid -> handle
        self.retries: list[tuple[int, int]] = []  # (seq, uid) of successful retry() calls
        self.attempts: Counter[int] = Counter()  # spec index -> function calls
        self.ops: list[str] = []
        self.problems: list[str] = []  # seen while running (an op raised, a hang)

    def seq(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    def note(self, problem: str) -> None:
        with self.lock:
            self.problems.append(problem)

    # worker side
    def begin(self, spec: Spec, uid: int, ups: tuple, states: dict, kwargs: dict) -> int:
        with self.lock:
            self._seq += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
            for name, amount in (spec.resources or {}).items():
                self.res_running[name] += amount
                self.res_peak[name] = max(self.res_peak[name], self.res_running[name])
            self.attempts[spec.i] += 1
            self.starts.append(
                {"seq": self._seq, "spec": spec.i, "uid": uid, "ups": ups,
                 "states": states, "kwargs": dict(kwargs), "running": self.running}
            )  # fmt: skip
            return self.attempts[spec.i]

    def end(self, spec: Spec, uid: int) -> None:
        with self.lock:
            self._seq += 1
            self.running -= 1
            for name, amount in (spec.resources or {}).items():
                self.res_running[name] -= amount
            self.ends[uid].append(self._seq)

    # owner side
    def record(self, kind: str, key: Any, *rest: Any) -> None:
        with self.lock:
            self._seq += 1
            self.stream.append((self._seq, kind, key, *rest))

    def added(
        self, spec: Spec, uid: int, ups: list[int], begin: int, handle: Any, thread: str
    ) -> None:
        with self.lock:
            self._seq += 1
            self.adds[spec.i] = {"uid": uid, "ups": ups, "begin": begin, "end": self._seq,
                                 "thread": thread}  # fmt: skip
            self.uid_of[spec.i] = uid
            self.spec_of[uid] = spec.i
            if handle is not None:
                self.handles[uid] = handle


@dataclass
class Run:
    scenario: Scenario
    log: Log
    level: str
    final: dict[str, Any] = field(default_factory=dict)
    sentinel_group: Any = None


# ---------------------------------------------------------------------- task functions


def make_fn(spec: Spec, level: Any, log: Log) -> Any:
    """The function of a task: records what it saw, then behaves as ``spec`` says."""

    def task_fn(**kwargs: Any) -> Any:
        found = current()
        assert found is not None
        scheduler, task = found
        ups = tuple(task.upstream)
        states: dict[int, Any] = {}
        for up in ups:
            try:
                states[up] = scheduler.state(up)
            except KeyError:
                states[up] = None  # forgotten
        attempt = log.begin(spec, task.uid, ups, states, kwargs)
        try:
            behaviour = spec.behaviour
            if behaviour == "raise":
                raise ValueError(f"boom {spec.i}")
            if behaviour == "flaky" and attempt <= spec.flaky_n:
                raise OSError(f"flaky {spec.i} attempt {attempt}")
            if behaviour == "slow":
                ctx = TaskContext(scheduler, task)
                for _ in range(spec.slow_steps):
                    ctx.sleep(0.001)  # raises TaskCancelled on a stop or a timeout
            elif behaviour == "stop_other" and spec.stop_target is not None:
                target, up, down = spec.stop_target
                uid = task.uid if target < 0 else log.uid_of.get(target)
                if uid is not None:
                    level.stop(uid, up, down)
            elif behaviour == "adder" and attempt == 1:
                with log.lock:
                    log.uid_of.setdefault(spec.i, task.uid)
                for child in spec.children:
                    level.add(level.scenario.specs[child], thread="worker")
            return result_of(spec)
        finally:
            log.end(spec, task.uid)

    task_fn.__qualname__ = f"spec{spec.i}"
    return task_fn


def task_options(spec: Spec) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if spec.key is not None:
        options["key"] = spec.key
    if spec.retries:
        options["retries"] = spec.retries
        options["retry_on"] = OSError if spec.retry_on == "OSError" else ValueError
        options["backoff"] = spec.backoff
    if spec.timeout is not None:
        options["timeout"] = spec.timeout
    if spec.resources:
        options["resources"] = spec.resources
    if spec.policy is not None:
        options["on_upstream_failure"] = spec.policy
    return options


# ---------------------------------------------------------------------- the UI side


class Driver:
    """What the UI thread does during a run: record events, run the UI ops."""

    def __init__(self, scenario: Scenario, level: Any, log: Log) -> None:
        self.scenario = scenario
        self.level = level
        self.log = log
        self.ops = collections.deque(scenario.ops)
        self.delivered = 0  # terminal events
        self.retry_budget = {s.i: s.retry_budget for s in scenario.specs if s.retry_budget}
        self.paused_polls = 0
        self.last_event = time.monotonic()

    def on_event(self, kind: str, key: Any, *rest: Any) -> None:
        self.log.record(kind, key, *rest)
        self.last_event = time.monotonic()
        if kind in ("failed", "cancelled"):
            i = self.log.spec_of.get(key)
            if i is not None and self.retry_budget.get(i):
                self.retry_budget[i] -= 1
                self._retry(key, "on its end")
        if kind in TERMINAL:
            self.delivered += 1
            self.run_due()

    def run_due(self, force: bool = False) -> None:
        while self.ops and (force or self.ops[0][0] <= self.delivered):
            _, op = self.ops.popleft()
            self.run_op(op)
            force = False

    def poll(self) -> None:
        """Called often by the UI thread while it waits."""
        if self.paused_polls:
            self.paused_polls -= 1
            if not self.paused_polls:
                self.log.ops.append("resume")
                self.level.resume()
        elif self.ops and (self.level.live() == 0 or time.monotonic() - self.last_event > 0.05):
            self.run_due(force=True)  # nothing would trigger it any more

    def done(self) -> bool:
        return not self.ops and not self.paused_polls

    def _uid(self, i: int) -> int | None:
        return self.log.uid_of.get(i)

    def _retry(self, uid: int, why: str) -> None:
        seq = self.log.seq()  # before: the revived tasks may start before the call returns
        try:
            self.level.retry(uid)
        except ValueError:
            return  # not failed or cancelled (any more), or a keyed request
        except Exception as exc:  # noqa: BLE001
            self.log.note(f"retry({uid}) {why} raised {exc!r}\n{traceback.format_exc(limit=-8)}")
            return
        self.log.retries.append((seq, uid))
        self.log.ops.append(f"retry({uid}) {why}")

    def run_op(self, op: tuple) -> None:
        level, log = self.level, self.log
        kind = op[0]
        try:
            if kind == "add":
                for i in op[1]:
                    level.add(self.scenario.specs[i], thread="ui")
                return
            if kind == "pause":
                if not self.paused_polls:
                    log.ops.append("pause")
                    level.pause()
                    self.paused_polls = op[1]
                return
            if kind in ("stop", "cancel", "retry", "set_priority"):
                uid = self._uid(op[1])
                if uid is None:
                    return
                if kind == "stop":
                    log.ops.append(f"stop({uid}, up={op[2]}, down={op[3]})")
                    level.stop(uid, op[2], op[3])
                elif kind == "cancel":
                    handle = log.handles.get(uid)
                    if handle is not None:
                        log.ops.append(f"handle({uid}).cancel()")
                        handle.cancel()
                elif kind == "retry":
                    self._retry(uid, "by an op")
                else:
                    try:
                        level.set_priority(uid, op[2])
                        log.ops.append(f"set_priority({uid}, {op[2]})")
                    except ValueError:
                        pass  # not pending or queued
                return
            if kind == "stop_group":
                log.ops.append(f"stop_group({op[1]!r}, up={op[2]}, down={op[3]})")
                level.stop_group(op[1], op[2], op[3])
            elif kind == "set_group_priority":
                log.ops.append(f"set_group_priority({op[1]!r}, {op[2]})")
                level.set_group_priority(op[1], op[2])
            elif kind == "stop_all":
                log.ops.append("stop_all()")
                level.stop_all()
        except Exception as exc:  # noqa: BLE001
            log.note(f"UI op {op} raised {exc!r}\n{traceback.format_exc(limit=-8)}")


def dump_threads() -> str:
    """Every thread's stack (faulthandler), to stderr and as text for the failure message."""
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    out = io.StringIO()
    for ident, frame in sys._current_frames().items():
        out.write(f"--- thread {ident}\n")
        out.write("".join(traceback.format_stack(frame, limit=12)))
    return out.getvalue()


# ---------------------------------------------------------------------- the Qt-free level


class _FakeManager:
    """What a TaskHandle needs of its manager, over a bare Scheduler."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def task_state(self, uid: int) -> TaskState:
        return self._scheduler.state(uid)

    def info(self, uid: int) -> Any:
        return self._scheduler.info(uid)

    def stop_handle(self, uid: int) -> bool:
        return self._scheduler.stop(uid, False, True)

    def handle_will_block(self) -> None:
        self._scheduler.gate.blocking()

    def add_handle_callback(self, handle: Any, fn: Any) -> None:  # pragma: no cover
        raise NotImplementedError


class CoreLevel:
    """The Qt-free Scheduler, its workers in plain threads, the test's thread as UI thread."""

    name = "core"

    def __init__(self, scenario: Scenario, log: Log, keep_finished: int = 100_000) -> None:
        self.scenario = scenario
        self.log = log
        self.threads: list[threading.Thread] = []
        self.threads_lock = threading.Lock()
        self.woken = threading.Event()
        self.s = Scheduler(scenario.max_workers, self._spawn, self.woken.set, keep_finished)
        self.s.watch([TASK_ADDED, TASK_STATE])
        for name, limit in LIMITS.items():
            self.s.set_resource_limit(name, limit)
        self.fake = _FakeManager(self.s)

    def _spawn(self, n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=run_worker, args=(self.s,), daemon=True)
            with self.threads_lock:
                self.threads.append(t)
            t.start()

    # the calls a scenario makes
    def add(self, spec: Spec, thread: str) -> int | None:
        log = self.log
        ups = [log.uid_of[j] for j in spec.ups if j in log.uid_of]
        if len(ups) != len(spec.ups):
            log.note(f"scenario error: {spec.describe()} added before its upstream tasks")
        begin = log.seq()
        handle = TaskHandle(self.fake) if spec.handle else None  # type: ignore[arg-type]
        fn = None if spec.kind == "pass" else make_fn(spec, self, log)
        try:
            opts = self.s.make_options(**task_options(spec))
            uid = self.s.add(fn, spec.priority, spec.group, ups, None, spec.own, opts,
                             None, spec.exclusive, handle)  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            log.note(f"add of {spec.describe()} ({thread}) raised {exc!r}")
            return None
        if handle is not None:
            handle.uid = uid
        log.added(spec, uid, ups, begin, handle, thread)
        return uid

    def stop(self, uid: int, up: bool, down: bool) -> None:
        self.s.stop(uid, up, down)

    def stop_group(self, group: Any, up: bool, down: bool) -> None:
        self.s.stop_group(group, up, down)

    def stop_all(self) -> None:
        self.s.stop_all()

    def retry(self, uid: int) -> None:
        self.s.retry(uid)

    def set_priority(self, uid: int, p: float) -> None:
        self.s.set_priority(uid, p)

    def set_group_priority(self, group: Any, p: float) -> None:
        self.s.set_group_priority(group, p)

    def pause(self) -> None:
        self.s.pause()

    def resume(self) -> None:
        self.s.start()

    def live(self) -> int:
        return self.s.counts()["live"]

    # the owner's drain, as the manager's
    def drain(self, driver: Driver) -> int:
        events = self.s.take_events()
        for event in events:
            kind = event[0]
            if kind == TASK_ADDED:  # (kind, uid, group)
                driver.on_event("added", event[1], event[2])
            elif kind == TASK_STATE:  # (kind, uid, group, state's value)
                driver.on_event("state", event[1], TaskState(event[3]))
            elif kind == GROUP_FINISHED:
                driver.on_event("group", event[1])
            elif kind == TASK_COMPLETED:  # (kind, uid, group, result)
                # the next take marks it delivered (tasks added from then on don't merge it)
                driver.on_event("completed", event[1], event[2], event[3])
            elif kind in (TASK_FAILED, TASK_CANCELLED):
                task = event[1]
                task.pending = False
                if kind == TASK_FAILED:
                    driver.on_event("failed", task.uid, task.group, task.message)
                else:
                    driver.on_event("cancelled", task.uid, task.group)
        return len(events)


def run_core(scenario: Scenario, timeout: float = 60.0, keep_finished: int = 100_000) -> Run:
    """Play ``scenario`` on the Qt-free Scheduler; returns the recorded run."""
    log = Log(scenario.max_workers, LIMITS)
    level = CoreLevel(scenario, log, keep_finished)
    driver = Driver(scenario, level, log)
    run = Run(scenario, log, "core")
    s = level.s
    try:
        for i in scenario.ui_order[: scenario.initial]:
            level.add(scenario.specs[i], thread="ui")
        s.start()
        deadline = time.monotonic() + timeout
        while True:
            level.woken.wait(0.002)
            level.woken.clear()
            level.drain(driver)
            driver.poll()
            if driver.done() and s.counts()["live"] == 0 and s.counts()["workers"] == 0:
                if level.drain(driver) == 0 and s.counts()["live"] == 0:
                    break
            if time.monotonic() > deadline:
                stacks = dump_threads()
                live = [(t.uid, t.name, t.state.name) for t in s._tasks.values()
                        if not t.state.is_terminal][:20]  # fmt: skip
                log.note(
                    f"hang: not drained within {timeout} s; counts={s.counts()}, "
                    f"ops left={len(driver.ops)}, live tasks (first 20): {live}\n{stacks}"
                )
                break
        run.final = final_state(s)
    finally:
        s.close()
        with level.threads_lock:
            threads = list(level.threads)
        for t in threads:
            t.join(5)
    return run


def final_state(s: Scheduler) -> dict[str, Any]:
    with s._lock:
        in_use = {k: v for k, v in s._in_use.items() if v}
        parked = s._n_parked
        groups = {g: sorted(m) for g, m in s._groups.items()}
        ready = s._n_ready
    return {
        "state_counts": {k.name: v for k, v in s.state_counts().items() if v},
        "counts": s.counts(),
        "in_use": in_use,
        "parked": parked,
        "groups": groups,
        "ready": ready,
    }


# ---------------------------------------------------------------------- the checker


def check_run(run: Run) -> list[str]:
    """Every README promise the record can show, checked; returns the problems found."""
    log, scn = run.log, run.scenario
    problems: list[str] = list(log.problems)
    specs = scn.specs

    # --- one terminal signal per uid per run; groups (from the stream, in order)
    open_run: dict[int, bool] = {}
    runs: Counter[int] = Counter()
    group_of: dict[int, Any] = {}
    live: dict[Any, set[int]] = defaultdict(set)
    reported: set[Any] = set()
    owed: Counter[Any] = Counter()  # group finishes due and not yet seen
    ends: dict[int, list[tuple]] = defaultdict(list)  # uid -> its terminal records
    completed_at: dict[int, tuple[int, int, Any]] = {}  # uid -> (stream pos, seq before, result)
    prev_seq = 0
    for pos, rec in enumerate(log.stream):
        seq, kind, key = rec[0], rec[1], rec[2]
        if kind == "added":
            uid, group = key, rec[3]
            if uid in group_of:
                problems.append(f"task {uid} was added twice")
            group_of[uid] = group
            if owed[group]:
                problems.append(
                    f"group {group!r} got task {uid} before its owed task_group_finished"
                )
            open_run[uid] = True
            runs[uid] = 1
            live[group].add(uid)
        elif kind == "state":
            uid, state = key, rec[3]
            if uid not in group_of:
                problems.append(f"state {state} of task {uid} before its task_added")
            elif state is TaskState.PENDING and not open_run.get(uid):
                group = group_of[uid]  # revived by retry(): a new run
                if owed[group]:
                    problems.append(
                        f"group {group!r} got task {uid} back before its owed task_group_finished"
                    )
                open_run[uid] = True
                runs[uid] += 1
                live[group].add(uid)
            elif state.is_terminal and not open_run.get(uid):
                problems.append(f"task {uid} moved to {state.name} after its run had ended")
        elif kind in TERMINAL:
            uid, group = key, rec[3]
            ends[uid].append(rec)
            if uid not in group_of:
                problems.append(f"task {uid} ended ({kind}) without a task_added")
                continue
            if not open_run.get(uid):
                earlier = [r[1] for r in ends[uid]]
                problems.append(f"task {uid} ended twice in run {runs[uid]}: signals {earlier}")
                continue
            open_run[uid] = False
            if kind == "completed" and uid not in completed_at:
                completed_at[uid] = (pos, prev_seq, rec[4])
            members = live[group]
            members.discard(uid)
            if kind != "cancelled":
                reported.add(group)
            if not members and group in reported:
                reported.discard(group)
                owed[group] += 1
        elif kind == "group":
            if owed[key]:
                owed[key] -= 1
            else:
                problems.append(
                    f"task_group_finished({key!r}) not due: live tasks {sorted(live[key])[:5]}, "
                    "or no completion/failure since the group last finished"
                )
        prev_seq = seq
    for uid, is_open in open_run.items():
        if is_open:
            problems.append(
                f"task {uid} never ended (run {runs[uid]}); spec {_spec_text(run, uid)}"
            )
    for group, n in owed.items():
        if n:
            problems.append(f"group {group!r}: task_group_finished missing ({n} owed)")
    for i, add in log.adds.items():
        if add["uid"] not in group_of:
            problems.append(f"task {add['uid']} ({specs[i].describe()}) never got task_added")

    # --- exclusive=True cancels the group's older unstarted tasks, never the new task's own
    # upstream: the cancels its add made follow its task_added in one block (one lock hold)
    ups_of = {add["uid"]: add["ups"] for add in log.adds.values()}
    for i, add in log.adds.items():
        if not specs[i].exclusive:
            continue
        uid = add["uid"]
        pos = next((p for p, r in enumerate(log.stream) if r[1] == "added" and r[2] == uid), None)
        if pos is None:
            continue
        state_then: dict[int, Any] = {}  # each task's state when the exclusive task was added
        for rec in log.stream[:pos]:
            if rec[1] == "added":
                state_then[rec[2]] = TaskState.PENDING
            elif rec[1] == "state":
                state_then[rec[2]] = rec[3]
        closure, todo = set(), list(add["ups"])  # the live tasks it waits for, directly or not
        while todo:
            u = todo.pop()
            st = state_then.get(u)
            if u not in closure and st is not None and not st.is_terminal:
                closure.add(u)
                todo.extend(ups_of.get(u, ()))
        for rec in log.stream[pos + 1 :]:
            # the block: the stops _cancel_older made (and their cascades), nothing else
            if rec[2] == uid or not (
                rec[1] == "cancelled" or rec[1] == "group"
                or (rec[1] == "state" and rec[3] is TaskState.CANCELLED)
            ):  # fmt: skip
                break
            if rec[1] == "cancelled" and rec[2] in closure and rec[3] == specs[i].group:
                problems.append(
                    f"exclusive task {uid} ({specs[i].describe()}) cancelled its own upstream "
                    f"task {rec[2]} when it was added"
                )

    # --- upstream: a function starts only once every upstream task completed
    retried_closure = _retried(run)
    for start in log.starts:
        for up, state in start["states"].items():
            if state is not TaskState.COMPLETED and state is not None:
                problems.append(
                    f"task {start['uid']} ({specs[start['spec']].describe()}) started while its "
                    f"upstream task {up} was {state.name}"
                )
            elif log.ends.get(up) and not any(s < start["seq"] for s in log.ends[up]):
                problems.append(
                    f"task {start['uid']} started before the function of its upstream {up} returned"
                )
        if start["running"] > log.max_workers:
            problems.append(
                f"{start['running']} task functions ran at once, max_threads={log.max_workers}"
            )
    for name, peak in log.res_peak.items():
        if peak > log.limits[name]:
            problems.append(f"resource {name!r}: {peak} in use at once, limit {log.limits[name]}")
    # in the stream: a task never completes before its upstream tasks did
    for uid, (pos, _, _) in completed_at.items():
        i = log.spec_of.get(uid)
        if i is None:
            continue
        for up in log.adds[i]["ups"]:
            up_done = completed_at.get(up)
            if up_done is None or up_done[0] > pos:
                problems.append(
                    f"task {uid} ({specs[i].describe()}) completed but its upstream task {up} "
                    + ("never completed" if up_done is None else "completed after it")
                )

    # --- dict results merge into downstream kwargs, upstream keys winning
    for start in log.starts:
        i = start["spec"]
        first_run = not any(s < start["seq"] for s in retried_closure.get(start["uid"], ()))
        if log.adds.get(i, {}).get("uid") not in (start["uid"], None) and specs[i].key is None:
            continue
        problems.extend(
            _check_merge(run, i, start["kwargs"], first_run, f"kwargs of task {start['uid']}")
        )
    for uid, (_, _, result) in completed_at.items():
        i = log.spec_of.get(uid)
        if i is not None and specs[i].kind == "pass":
            first_run = not retried_closure.get(uid)
            if not isinstance(result, dict):
                problems.append(f"pass-through task {uid} completed with {result!r}")
            else:
                problems.extend(
                    _check_merge(run, i, result, first_run, f"result of pass-through {uid}")
                )

    # --- handles agree with the signals
    for uid, handle in log.handles.items():
        if not handle.done():
            problems.append(f"handle of task {uid} is not done at the end")
            continue
        outcomes = ends.get(uid, [])
        if not outcomes:
            continue
        candidates = outcomes if runs[uid] > 1 else outcomes[:1]
        got = _handle_outcome(handle)
        if not any(_agrees(got, rec) for rec in candidates):
            problems.append(
                f"handle of task {uid} says {got} but the task ended with "
                f"{[(r[1], r[4] if len(r) > 4 else None) for r in candidates]}"
            )

    # --- nothing left live
    final = run.final
    if final:
        live_states = {k: v for k, v in final["state_counts"].items()
                       if k not in ("COMPLETED", "FAILED", "CANCELLED")}  # fmt: skip
        if live_states:
            problems.append(f"state_counts() not all terminal at the end: {final['state_counts']}")
        counts = final["counts"]
        for name in ("live", "queued", "keys"):
            if counts.get(name):
                problems.append(f"counts()[{name!r}] is {counts[name]} at the end (want 0)")
        if final.get("parked"):
            problems.append(
                f"{final['parked']} tasks still counted parked on a resource at the end"
            )
        if final.get("ready"):
            problems.append(f"{final['ready']} tasks still counted ready at the end")
        if final.get("in_use"):
            problems.append(f"resources still in use at the end: {final['in_use']}")
        if final.get("groups"):
            problems.append(f"groups still registered live at the end: {final['groups']}")
    return _dedupe(problems)


def _dedupe(problems: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for p in problems:
        seen.setdefault(p, None)
    return list(seen)


def _spec_text(run: Run, uid: int) -> str:
    i = run.log.spec_of.get(uid)
    return run.scenario.specs[i].describe() if i is not None else "(not a scenario task)"


def _retried(run: Run) -> dict[int, list[int]]:
    """uid -> seqs of successful retry() calls that may have revived it (it, or upstream of it)."""
    log = run.log
    ups_of = {add["uid"]: add["ups"] for add in log.adds.values()}
    out: dict[int, list[int]] = defaultdict(list)
    for seq, target in log.retries:
        todo, seen = [target], set()
        while todo:
            u = todo.pop()
            if u in seen:
                continue
            seen.add(u)
            out[u].append(seq)
            todo.extend(ups_of.get(u, ()))
    return out


def _check_merge(run: Run, i: int, got: dict, first_run: bool, what: str) -> list[str]:
    """``got`` (kwargs, or a pass-through's result) against spec ``i``'s own kwargs and its
    upstream tasks' delivered dict results."""
    log, spec = run.log, run.scenario.specs[i]
    add = log.adds.get(i)
    if add is None:
        return []
    required: dict[str, list[Any]] = defaultdict(list)
    allowed: dict[str, list[Any]] = defaultdict(list)
    source: dict[str, list[str]] = defaultdict(list)
    completed = {}
    for rec in log.stream:
        if rec[1] == "completed" and rec[2] not in completed:
            completed[rec[2]] = rec
    prev: dict[int, int] = {}
    last = 0
    for rec in log.stream:
        if rec[1] == "completed" and rec[2] not in prev:
            prev[rec[2]] = last
        last = rec[0]
    for up in add["ups"]:
        rec = completed.get(up)
        if rec is None:
            continue
        result = rec[4]
        if not isinstance(result, dict) or not result:
            continue
        # merged if the upstream's completion was not delivered when this task was added
        needed = first_run and add["end"] < prev[up]
        for k, v in result.items():
            allowed[k].append(v)
            if needed:
                required[k].append(v)
                source[k].append(f"upstream task {up}'s {type(result).__name__}")
    problems = []
    for k, values in required.items():
        if k not in got:
            problems.append(
                f"{what} ({spec.describe()}) lack key {k!r} of {' / '.join(source[k])} "
                f"result: got {sorted(got)}"
            )
        elif not any(got[k] == v for v in values):
            problems.append(
                f"{what} ({spec.describe()}): {k}={got[k]!r}, want the value of "
                f"{' / '.join(source[k])} result, {values!r}"
            )
    for k, v in got.items():
        if k in required:
            continue
        if k in spec.own and got[k] == spec.own[k]:
            continue
        if k in allowed and any(got[k] == x for x in allowed[k]):
            continue
        problems.append(f"{what} ({spec.describe()}): unexpected {k}={v!r}")
    return problems


def _handle_outcome(handle: Any) -> tuple[str, Any]:
    if handle.cancelled():
        return ("cancelled", None)
    try:
        exc = handle.exception(0)
    except TaskCancelled:
        return ("cancelled?", None)
    if exc is not None:
        return ("failed", type(exc).__name__)
    return ("completed", handle.result(0))


def _agrees(got: tuple[str, Any], rec: tuple) -> bool:
    kind = rec[1]
    if got[0] != kind:
        return False
    if kind == "completed":
        return got[1] is rec[4] or got[1] == rec[4]
    return True


def report(run: Run, problems: list[str], limit: int = 12) -> str:
    """A failure message: the seed, the problems, and the specs of the tasks they name."""
    import re

    uids = {int(m) for p in problems[:limit] for m in re.findall(r"task (\d+)", p)}
    uids |= {int(m) for p in problems[:limit] for m in re.findall(r"upstream (?:task )?(\d+)", p)}
    specs = {run.log.spec_of[u] for u in uids if u in run.log.spec_of}
    more = set()
    for i in specs:
        more.update(run.scenario.specs[i].ups)
    lines = [
        f"{len(problems)} invariant(s) broken, level={run.level}, seed={run.scenario.seed} "
        f"(reproduce: make_scenario({run.scenario.seed}, ...)):",
    ]
    lines += ["  - " + p.replace("\n", "\n    ") for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    lines.append("tasks named above (uid -> spec):")
    for u in sorted(uids):
        if u in run.log.spec_of:
            lines.append(f"  {u}: {run.scenario.specs[run.log.spec_of[u]].describe()}")
    log = run.log
    lines.append("history of those tasks (seq, what):")
    reached = _retried(run)
    for u in sorted(uids)[:8]:
        hist = [(r[0], r[1], *(r[3:4] if r[1] == "state" else ())) for r in log.stream if r[2] == u]
        hist += [(st["seq"], f"fn start kwargs={sorted(st['kwargs'])} ups={st['states']}")
                 for st in log.starts if st["uid"] == u]  # fmt: skip
        hist += [(q, "fn end") for q in log.ends.get(u, ())]
        hist += [(q, "retry() call") for q, t in log.retries if t == u]
        hist += [
            (q, "retry() of a task downstream")
            for q in reached.get(u, ())
            if (q, u) not in log.retries
        ]
        add = next((a for a in log.adds.values() if a["uid"] == u), None)
        if add is not None:
            hist.append((add["begin"], f"add from {add['thread']} thread, ups={add['ups']}"))
        hist.sort(key=lambda h: h[0])
        lines.append(f"  {u}: " + ", ".join(" ".join(map(str, h)) for h in hist[:30]))
    lines.append("last UI ops: " + "; ".join(run.log.ops[-15:]))
    lines.append(f"final: {run.final}")
    return "\n".join(lines)
