"""The node that stands in for a node running in a Ray actor (`executor: ray`).

`make_executor_node(spec)` returns a `RayNode` whose class carries the wrapped class's
`node_type`, `inputs`, `accepts` and `requires`, so the engine schedules it like the real node.
The actor is placed with the manifest's `resources` (`{num_gpus: 1}`, `{num_cpus: 0.5}`, or any
custom resource name), on the cluster `ray.init()` finds: `RAY_ADDRESS` (or
`REMOTEMEDIA_RAY_ADDRESS`), else a cluster started on this machine with `ray start`, else a new
local one (about 2.4 s and 950 MiB on these machines, DESIGN.md).

Serialization, counted at this node only. Every frame sent is pickled once (`pickle.dumps` of the
`RuntimeData.Numpy`, counted by the engine's copyreg reducer like any pickle of an array, and
refused in strict mode), and every array the node outputs is pickled once inside the actor, which
says how many, and is counted here as a `ray-actor` event. Each crossing also counts two `io`
copies, the pickle and the unpickle; Ray's own copies of the pickled bytes (into its object store
and out) are on top of those. A frame through a Ray node and back: 2 serialization events and 4
`io` copies. The rest of the graph stays zero-copy.

Frames in flight, queue policy, failures: as for `executor: process` (remotemedia/ipc/proxy.py).
`process(frame)` sends the frame and waits up to REPLY_WAIT_S for its answer, so a fast node's
outputs leave in the same `push`; at most `queue_size` requests are in flight, and when that many
are, `queue_policy` decides (`block` waits, `drop_newest` drops the incoming frame, `drop_oldest`
writes off the oldest in flight, whose answer is then discarded). Every dropped frame counts in
`drops`. An actor that dies is noticed when its answer is collected; one that stays silent for
DEADLINE_S with requests in flight is killed. Either way the frames in flight count as drops and
the crash as an error; `on_error: fail` raises `ActorCrashed`, `restart` and `skip` start a new
actor (more than MAX_RESTARTS within RESTART_WINDOW_S raise instead). A node that raises inside
the actor fails the session under `fail` and drops that frame under `skip` and `restart`.

Stats. The node's report gains `executor: "ray"`, `round_trip_us` (p50, p95, p99, max over the
recent frames: from before the frame is pickled to the moment this side holds the unpickled
answer) and `restarts`.

Settings from the environment when the node starts: REMOTEMEDIA_RAY_DEADLINE_MS,
REMOTEMEDIA_RAY_REPLY_WAIT_MS, REMOTEMEDIA_RAY_START_TIMEOUT_MS.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
import weakref
from collections import OrderedDict

from ..engine.data import NumpyData
from ..remote_node import (MAX_RESTARTS, RESTART_WINDOW_S, RemoteFailures,  # noqa: F401
                           check_remote_spec, proxy_class)
from ..engine.errors import RemoteMediaError, one_line
from ..engine.metrics import LatencyRing
from ..engine.node import AudioFormat, Node
from ..engine.serialization import record_encode
from . import actor as actor_module
from . import cluster

DEADLINE_S = 5.0          # a request unanswered this long means the actor hangs
REPLY_WAIT_S = 0.010      # how long process() waits for the frame it just sent: half a block
START_TIMEOUT_S = 60.0    # from creating the actor to its ready() answer (placement + setup())
STOP_TIMEOUT_S = 2.0      # for the node's teardown() in the actor, before the actor is killed
POLL_S = 0.005            # the longest wait between deadline checks


class ActorError(RemoteMediaError):
    """The Ray actor of a node failed; the session wraps it in a NodeError."""


class ActorCrashed(ActorError):
    """The actor died, or stopped answering, with frames in flight."""


class ActorStartError(ActorError):
    """Ray is missing or unreachable, or the actor could not be placed, import or set up."""


class RemoteNodeError(ActorError):
    """The node raised inside its actor; the message carries its type and text."""


class _Died(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) / 1000.0 if value else default


def _ray():
    """The `ray` module, connected to a cluster (see the module docstring for which)."""
    try:
        return cluster.connect(os.environ.get("REMOTEMEDIA_RAY_ADDRESS") or None)
    except cluster.ClusterError as exc:
        raise ActorStartError(f"executor 'ray': {exc}") from None


_actor_classes: dict = {}


def _remote_actor_class(ray):
    cls = _actor_classes.get("NodeActor")
    if cls is None:
        cls = _actor_classes["NodeActor"] = ray.remote(actor_module.NodeActor)
    return cls


def actor_options(resources) -> dict:
    """Ray actor options from a manifest's `resources` mapping (unknown names are custom)."""
    options: dict = {"max_restarts": 0, "max_concurrency": 1}
    custom = {}
    for name, value in dict(resources).items():
        if name in ("num_cpus", "num_gpus", "memory"):
            options[name] = value
        else:
            custom[name] = value
    if custom:
        options["resources"] = custom
    return options


class _Request:
    __slots__ = ("ref", "sent_ns", "is_frame", "abandoned")

    def __init__(self, ref, sent_ns: int, is_frame: bool):
        self.ref = ref
        self.sent_ns = sent_ns
        self.is_frame = is_frame
        self.abandoned = False


class RayNode(RemoteFailures, Node):
    """Stands in for `wrapped` (a Node class) running in a Ray actor."""

    wrapped: type[Node] = Node
    retains_input = False   # the frame is pickled before process() returns

    def __init__(self, spec):
        self.node_id = spec.id
        self.spec = spec
        self.config = dict(spec.params)
        self.format = AudioFormat()
        self.actor = None
        self.where: dict | None = None   # {"pid", "host"} of the live actor
        self._init_failures()
        self.round_trip = LatencyRing()
        self._inflight: OrderedDict[int, _Request] = OrderedDict()
        self._next_id = 1
        self._last_answer_ns = 0
        self._counters = None   # the session's, from the last call: teardown counts with them
        self._policy = spec.queue_policy
        self._queue = spec.queue_size
        self._on_error = spec.on_error
        self._ray = None

    # -- lifecycle -------------------------------------------------------------------------------
    def setup(self) -> None:
        """Reads the REMOTEMEDIA_RAY_* settings (ms in the environment, seconds here) and starts
        the actor on the cluster ray.init() finds, waiting up to start_timeout_s for the wrapped
        node's setup() there. Raises a RemoteMediaError (ActorCrashed / start failure) if it
        does not come up."""
        self.deadline_s = _env_seconds("REMOTEMEDIA_RAY_DEADLINE_MS", DEADLINE_S)
        self.reply_wait_s = _env_seconds("REMOTEMEDIA_RAY_REPLY_WAIT_MS", REPLY_WAIT_S)
        self.start_timeout_s = _env_seconds("REMOTEMEDIA_RAY_START_TIMEOUT_MS",
                                            START_TIMEOUT_S)
        self._ray = _ray()
        self._start()

    def _start(self) -> None:
        ray = self._ray
        spec, fmt = self.spec, self.format
        cls = spec.node_class
        config = {
            "node_class": f"{cls.__module__}:{cls.__qualname__}",
            "node_id": spec.id,
            "params": dict(spec.params),
            "format": {"sample_rate": fmt.sample_rate, "channels": fmt.channels,
                       "block_size": fmt.block_size},
            "sys_path": [p for p in sys.path if isinstance(p, str) and p],
        }
        options = actor_options(spec.resources)
        try:
            handle = _remote_actor_class(ray).options(**options).remote(config)
        except Exception as exc:   # bad options: Ray refuses them at once
            raise ActorStartError(f"actor for {spec.node_type} could not be created: "
                                  f"{one_line(exc)}") from exc
        self.actor = handle
        _live.add(self)
        try:
            self.where = ray.get(handle.ready.remote(), timeout=self.start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            self._discard_actor()
            wanted = dict(spec.resources) or {"num_cpus": 1}
            raise ActorStartError(f"actor for {spec.node_type} was not ready within "
                                  f"{self.start_timeout_s:g} s (does the cluster have "
                                  f"{wanted} free?)") from None
        except ray.exceptions.RayError as exc:
            self._discard_actor()
            raise ActorStartError(f"actor for {spec.node_type} could not start: "
                                  f"{cluster.describe(exc)}") from None

    def _discard_actor(self) -> None:
        _live.discard(self)
        handle, self.actor = self.actor, None
        if handle is not None:
            try:
                self._ray.kill(handle, no_restart=True)
            except Exception:   # already gone, or the cluster with it: nothing left to stop
                pass

    def teardown(self) -> None:
        """Counts the frames still in flight as drops and stops the actor (the wrapped node's
        teardown() runs there). Safe to call twice."""
        handle = self.actor
        if handle is None:
            return
        lost = sum(1 for r in self._inflight.values() if r.is_frame and not r.abandoned)
        self._inflight.clear()
        counters = self._counters
        if lost and counters is not None:
            counters.drops += lost
        try:
            self._ray.get(handle.stop.remote(), timeout=STOP_TIMEOUT_S)
        except Exception:   # a dead or hung actor: it is killed below all the same
            pass
        finally:
            self._discard_actor()

    @property
    def pid(self) -> int | None:
        """The live actor's process id (on its host), or None without one."""
        return self.where["pid"] if self.where and self.actor is not None else None

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered, written-off ones excluded."""
        return sum(1 for r in self._inflight.values() if not r.abandoned)

    def executor_stats(self) -> dict:
        """This hop's figures for the report: executor "ray", round_trip_us {p50, p95, p99, max}
        (zeros before the first answer) and restarts."""
        summary = self.round_trip.summary_us()
        zero = {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
        return {"executor": "ray", "round_trip_us": summary.as_dict() if summary else zero,
                "restarts": self.restarts}

    # -- the hot path ----------------------------------------------------------------------------
    def process(self, data):
        """Sends the frame to the actor (one pickle, counted) under the queue policy and returns
        whatever answers have arrived within reply_wait_s (RuntimeData, as the wrapped node
        returned them). Runs on the thread that pushes and may wait there up to reply_wait_s
        (longer under `block` with a full queue). A dead or silent actor: frames in flight
        count as drops, then on_error applies (ActorCrashed under fail)."""
        counters = self.context.counters if self.context is not None else None
        self._counters = counters
        out: list = []
        sent = False
        try:
            if self.actor is None:
                raise _Died("has no actor (a restart failed earlier)")
            self._check_deadline()
            self._drain(out, counters, 0)
            if self.in_flight >= self._queue:
                if not self._make_room(out, counters):
                    return out
            rid = self._send(data, counters)
            sent = True
            if self.reply_wait_s > 0:
                self._wait(out, counters, lambda: rid not in self._inflight, self.reply_wait_s)
            return out
        except _Died as died:
            self._crashed(died.reason, counters)   # raises under on_error "fail"
            if not sent:   # the new actor takes the frame the old one never got
                out.extend(self.process(data))
            return out

    def on_control(self, event, _retry: bool = True):
        """Forwards the control event to the actor; flush and end_of_stream wait until nothing is
        in flight and return every answer. Failures as in process()."""
        counters = self.context.counters if self.context is not None else None
        self._counters = counters
        out: list = []
        try:
            if self.actor is None:
                raise _Died("has no actor (a restart failed earlier)")
            if self.in_flight >= self._queue:
                self._wait(out, counters, lambda: self.in_flight < self._queue, None)
            self._send(event, counters)
            self._wait(out, counters, lambda: not self._inflight, None)
        except _Died as died:
            self._crashed(died.reason, counters)   # raises under on_error "fail"
            if _retry:   # the new actor's node sees the event too
                out.extend(self.on_control(event, _retry=False))
        return out

    def _send(self, data, counters) -> int:
        sent_ns = time.perf_counter_ns()   # the round trip includes pickling and submitting
        payload = actor_module.pack([data])   # a frame's array is pickled here: counted
        rid = self._next_id
        self._next_id += 1
        is_frame = type(data) is NumpyData
        if is_frame and counters is not None:
            counters.io += 2   # pickled here, unpickled in the actor
        self._inflight[rid] = _Request(self.actor.call.remote(payload), sent_ns, is_frame)
        return rid

    def _make_room(self, out, counters) -> bool:
        """Apply the queue policy with `queue_size` requests in flight; False drops the frame."""
        if self._policy == "block":
            self._wait(out, counters, lambda: self.in_flight < self._queue, None)
            return True
        if counters is not None:
            counters.drops += 1
        if self._policy == "drop_newest":
            return False
        for request in self._inflight.values():   # drop_oldest
            if not request.abandoned:
                request.abandoned = True
                break
        return True

    def _check_deadline(self) -> None:
        if not self._inflight:
            return
        # Silent since the oldest request went out, or since the last answer if later: a slow
        # node that keeps answering is busy, not hung.
        oldest = next(iter(self._inflight.values()))
        silent_since = max(oldest.sent_ns, self._last_answer_ns)
        if (time.perf_counter_ns() - silent_since) / 1e9 > self.deadline_s:
            pid = self.pid
            self._discard_actor()
            raise _Died(f"actor pid {pid} did not answer within {self.deadline_s * 1000:g} ms "
                        f"and was killed")

    def _wait(self, out, counters, done, timeout_s) -> None:
        """Collect answers until done() or timeout_s (None: as long as the actor answers)."""
        start = time.perf_counter()
        while True:
            if done():
                return
            remaining = POLL_S if timeout_s is None else timeout_s - (time.perf_counter() - start)
            if remaining <= 0:
                return
            self._drain(out, counters, min(remaining, POLL_S))
            if done():
                return
            self._check_deadline()

    def _drain(self, out, counters, wait_s: float) -> None:
        """Collect the answers that are in, oldest first; wait up to wait_s for the first."""
        ray = self._ray
        inflight = self._inflight
        while inflight:
            rid, request = next(iter(inflight.items()))
            ready, _ = ray.wait([request.ref], num_returns=1, timeout=wait_s)
            if not ready:
                return
            wait_s = 0
            try:
                status, payload, arrays = ray.get(request.ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                raise _Died(f"actor pid {self.pid} died: {cluster.describe(exc)}") from None
            except ray.exceptions.RayError as exc:
                raise _Died(f"actor pid {self.pid} failed: {cluster.describe(exc)}") from None
            now = time.perf_counter_ns()
            self._last_answer_ns = now
            del inflight[rid]
            if status == "error":
                self._node_raised(request, f"{payload}: {arrays}", counters)
                continue
            outputs = actor_module.unpack(payload)
            if request.is_frame:
                self.round_trip.add(now - request.sent_ns)
            for _ in range(arrays):
                record_encode(None, "ray-actor")
            if counters is not None:
                counters.io += 2 * arrays   # pickled in the actor, unpickled here
            if not request.abandoned:
                out.extend(outputs)

    # The failure policy (RemoteFailures) names where the node runs and drops it so.
    raised_error = RemoteNodeError
    crashed_error = ActorCrashed

    @property
    def runs_in(self) -> str:
        """Where the node runs, for messages: "Ray actor pid N"."""
        return f"Ray actor pid {self.pid}"

    def _discard(self) -> None:
        self._discard_actor()


# Actors still alive when the interpreter exits (a session never closed) are killed, so they do
# not hold the cluster's resources until Ray notices the driver is gone.
_live: "weakref.WeakSet[RayNode]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for node in list(_live):
        node._discard_actor()


_proxy_classes: dict[type, type] = {}


def make_executor_node(spec) -> RayNode:
    """The engine's entry point for `executor: ray`."""
    check_remote_spec(spec, "ray", "a Ray actor", ActorStartError)
    return proxy_class(RayNode, spec.node_class, "Ray", _proxy_classes)(spec)
