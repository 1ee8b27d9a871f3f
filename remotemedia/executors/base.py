"""One base for every executor but inline: `RemoteNode` owns the policy, a `Transport` moves.

A manifest node with `executor: thread | process | ray` is replaced by a `RemoteNode` that
stands in for it: its class carries the wrapped class's `node_type`, `params`, `inputs`,
`accepts` and `requires`, so the engine schedules it like the real node, and its `process()`
hands each frame to where the node runs. What differs between executors is only how a request
gets there and how its answer comes back; that is a `Transport` (one incarnation of the worker:
a thread, a process, a Ray actor), a small class as httpx's `BaseTransport` is. Everything
else is here, once:

- Requests in flight. `process(frame)` sends the frame and waits up to `reply_wait_s` for its
  answer; answers that arrive later leave with a later `process()`, or with `flush` /
  `end_of_stream`, which wait until nothing is in flight. Answers come back in request order,
  on the thread that pushes (outputs keep their order and pts).
- Queue policy. At most `queue_size` requests are in flight; when that many are,
  `queue_policy` decides: `block` waits for a slot, `drop_newest` drops the incoming frame,
  `drop_oldest` writes off the oldest frame in flight (withdrawn if the worker has not started
  it, else its answer is discarded). Every dropped frame counts in the session's `drops` and in
  this node's `drops`.
- Failure policy (`on_error`). A node that raised where it runs: under `fail` the session fails
  (`RemoteNodeError`); under `skip` and `restart` the error is counted and its frame dropped. A
  worker that died, or stayed silent for `deadline_s` with requests in flight (nothing answered
  since the oldest went out, or since its last answer: a slow node that keeps answering is busy,
  not hung): its frames in flight count as drops and the crash as an error, then `fail` raises
  `ExecutorCrashed`, `skip` and `restart` start a new worker (more than MAX_RESTARTS restarts
  within RESTART_WINDOW_S seconds raise instead).
- Errors. Third-party exceptions are translated where they enter, one table per boundary
  (`translate()`), and re-raised `from` the original, as httpx's transports map httpcore's.
- Settings from the environment when the node starts, in ms: REMOTEMEDIA_<NAME>_DEADLINE_MS,
  REMOTEMEDIA_<NAME>_REPLY_WAIT_MS, REMOTEMEDIA_<NAME>_START_TIMEOUT_MS (NAME: THREAD, IPC, RAY).
- Stats. `executor_stats()` adds to the node's report: `executor` (its name), `queue` (size
  and policy), `drops` (frames this hop dropped), `restarts` and `round_trip_us` (p50, p95, p99,
  max over the recent frames: from sending a frame to holding its last answer; zeros before one).

All bookkeeping (reader counts, counters, the in-flight table) runs on the thread that pushes;
a transport's own thread or process only runs the node.
"""

from __future__ import annotations

import atexit
import os
import time
import weakref
from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterable, Iterator, Mapping

from ..engine.data import ControlData, NumpyData
from ..engine.errors import (CodecError, ExecutorCrashed, ExecutorStartError, RemoteMediaError,
                             RemoteNodeError, WorkerDied, one_line)
from ..engine.counters import LatencyRing
from ..engine.node import AudioFormat, Node

_INTERRUPT = ControlData("interrupt")
#: more restarts than this within RESTART_WINDOW_S seconds raise instead of restarting again
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
POLL_S = 0.005            # the longest sleep between liveness and deadline checks
STOP_TIMEOUT_S = 2.0      # for a worker to stop politely before it is killed or abandoned


def env_seconds(name: str, default: float) -> float:
    """A duration from the environment variable `name`, given there in milliseconds, in
    seconds; `default` (seconds) when unset or empty. ValueError for text that is no number."""
    value = os.environ.get(name)
    return float(value) / 1000.0 if value else default


@contextmanager
def translate(table: Mapping, what: str) -> Iterator[None]:
    """Translate third-party exceptions at one boundary, as httpx maps httpcore's: an exception
    that is an instance of a key of `table` (a type or a tuple of types, checked in order) is
    re-raised as the value, an exception type or (type, verb), with the message
    "`what` [verb]: Type: one line of it", chained `from` it. remotemedia's own errors and
    anything the table does not name pass unchanged. A value of `WorkerDied` makes it a crash
    of the worker (the failure policy applies), ExecutorStartError a start that failed."""
    try:
        yield
    except RemoteMediaError:
        raise
    except Exception as exc:
        for kind, value in table.items():
            if isinstance(exc, kind):
                ours, verb = (value, "") if isinstance(value, type) else value
                raise ours(f"{what}{' ' if verb else ''}{verb}: {describe(exc)}") from exc
        raise


def describe(exc: BaseException) -> str:
    """One line from any exception, "Type: text": a wrapper's `cause` (Ray's errors carry the
    real one there) is described instead of the wrapper; a message's traceback is cut off."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = one_line(str(exc)) if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(slots=True, eq=False)
class Request:
    """One frame or control event sent and not yet fully answered: its id, when it was sent
    (perf_counter ns), whether it is a frame (NumpyData) and has been written off. `frame` is
    the NumpyData itself when the transport holds frames by reference (its reader slot is given
    back when the request ends); `handle` is the transport's own (a Ray ObjectRef)."""

    rid: int
    sent_ns: int
    is_frame: bool
    frame: object = None
    abandoned: bool = False
    handle: object = None


@dataclass(slots=True, eq=False)
class Reply:
    """An answer (or part of one) from a transport: outputs (RuntimeData, in order) for request
    `rid`, or `error` (one line, "Type: text") with `cause` (the exception, where the node ran
    in this process); `last` ends the request."""

    rid: int
    outputs: list
    error: str | None = None
    cause: BaseException | None = None
    last: bool = True


class Transport:
    """One incarnation of the place a node runs (a thread, a worker process, a Ray actor), as
    httpx's BaseTransport is one way to send a request: RemoteNode makes a new one for each
    start and restart and owns every policy; a subclass only moves requests and answers. It
    implements start, send, receive, wait, check, stop and kill; abandon, pid and runs_in are
    optional. Every method is called on the thread that pushes (or opens and closes)."""

    #: the executor's name in manifests and stats
    name: ClassVar[str] = ""
    #: the environment prefix of its settings: REMOTEMEDIA_<env>_DEADLINE_MS, ...
    env: ClassVar[str] = ""
    deadline_s: ClassVar[float] = 5.0
    reply_wait_s: ClassVar[float] = 0.010
    start_timeout_s: ClassVar[float] = 30.0
    #: True: frames cross by reference (the worker reads the very buffer), so the frame keeps
    #: its reader slot until its request ends; False: the frame is copied before send() returns
    holds_frames: ClassVar[bool] = False
    #: how kill() ends a worker, for messages
    ended_by: ClassVar[str] = "killed"

    def __init__(self, node: "RemoteNode"):
        self.node = node

    #: the worker's process id, where it has one of its own
    pid: int | None = None

    @property
    def runs_in(self) -> str:
        """Where the node runs, for messages ("worker pid 123")."""
        return f"{self.name} worker"

    def start(self) -> None:
        """Bring the worker up and wait (up to `node.start_timeout_s`) until the wrapped node's
        setup() is done there. Raises ExecutorStartError (one line) if it cannot; RemoteNode
        then calls kill()."""
        raise NotImplementedError

    def send(self, request: Request, data, counters) -> None:
        """Hand one RuntimeData (a frame or a control event) over as `request` and count the
        `io` copies and serialization events it costs in `counters` (None outside a session).
        May raise CodecError for data that cannot cross (that frame's error)."""
        raise NotImplementedError

    def receive(self, requests: "OrderedDict[int, Request]", counters) -> Iterable[Reply]:
        """The answers that are in, without waiting: Reply objects in request order (an
        iterator may read `requests`, which RemoteNode updates as it takes each one). Raises
        WorkerDied when the worker is gone."""
        raise NotImplementedError

    def wait(self, timeout_s: float, requests: "OrderedDict[int, Request]") -> None:
        """Sleep until an answer may be in, at most timeout_s seconds (returning early is fine:
        RemoteNode loops)."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise WorkerDied (saying how, one line) when the worker is gone."""
        raise NotImplementedError

    def abandon(self, request: Request) -> bool:
        """Withdraw `request` if the worker has not started it: True means it will never be
        answered (drop_oldest then drops it without wasting the worker's time). Default: no."""
        return False

    def ready(self) -> bool:
        """Whether an answer may be waiting (a cheap check before receive()); default yes."""
        return True

    def interrupt(self) -> tuple[int, int]:
        """Barge-in: drop the requests the worker has not started and what it made and has
        not handed back, and stop the one it is on at its next output. Returns the audio
        dropped as (blocks, samples). Default: nothing can be withdrawn (0, 0); the answers
        of the written-off requests are then discarded as they arrive."""
        return 0, 0

    def stop(self, timeout_s: float) -> None:
        """Ask the worker to end, its node's teardown() running there, within timeout_s; kill()
        follows. Safe on a dead worker. A teardown error there is raised as RemoteNodeError."""
        raise NotImplementedError

    def kill(self) -> None:
        """End the worker at once (a crash, a hang, the interpreter exiting) and free what it
        held. Safe to call on a dead worker and twice."""
        raise NotImplementedError


class RemoteNode(Node):
    """Stands in for `wrapped` (a Node class) running behind `transport_class`; see the module
    docstring for the policies. Built by `executor_factory()` from a manifest NodeSpec."""

    wrapped: ClassVar[type[Node]] = Node
    transport_class: ClassVar[type[Transport]] = Transport
    #: called (from the worker's thread, never blocking) when an answer is in for poll():
    #: set by a run whose source can wake its loop between blocks (runner.py); the thread
    #: executor calls it, the others leave the answer for the next push
    on_ready: Callable[[], None] | None = None

    def __init__(self, spec):
        self.node_id = spec.id
        self.spec = spec
        self.config = dict(spec.params)
        self.format = AudioFormat()
        self.context = None
        self.transport: Transport | None = None
        self.round_trip = LatencyRing()
        self.restarts = 0
        self.drops = 0
        #: barge-ins this node was interrupted by
        self.interrupts = 0
        self._restart_times: deque = deque()
        self._inflight: OrderedDict[int, Request] = OrderedDict()
        self._next_id = 1
        self._last_answer_ns = 0
        self._counters = None   # the session's, from the last call: teardown counts with them
        self._policy = spec.queue_policy
        self._queue = spec.queue_size
        self._on_error = spec.on_error
        # A transport that holds frames keeps their reader slot until the request ends, unless
        # the wrapped node keeps its input anyway (then the slot is never given back).
        cls = self.transport_class
        self._release = cls.holds_frames and not spec.node_class.retains_input

    # -- lifecycle -------------------------------------------------------------------------------
    def setup(self) -> None:
        """Reads the REMOTEMEDIA_<NAME>_* settings (ms in the environment, seconds here) and
        starts the worker, waiting up to start_timeout_s for the wrapped node's setup() there.
        Raises ExecutorStartError (one line) when it does not come up."""
        cls, prefix = self.transport_class, f"REMOTEMEDIA_{self.transport_class.env}_"
        self.deadline_s = env_seconds(prefix + "DEADLINE_MS", cls.deadline_s)
        self.reply_wait_s = env_seconds(prefix + "REPLY_WAIT_MS", cls.reply_wait_s)
        self.start_timeout_s = env_seconds(prefix + "START_TIMEOUT_MS", cls.start_timeout_s)
        self._start()

    def _start(self) -> None:
        transport = self.transport_class(self)
        self.transport = transport
        _live.add(self)
        try:
            transport.start()
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        """Drop the worker at once (crashed, hung, or at exit)."""
        _live.discard(self)
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.kill()

    def teardown(self) -> None:
        """Counts the frames still in flight as drops, asks the worker to stop (the wrapped
        node's teardown() runs there; killed or abandoned after STOP_TIMEOUT_S). Safe to call
        twice."""
        transport = self.transport
        if transport is None:
            return
        self._lose_inflight(self._counters)
        _live.discard(self)
        self.transport = None
        try:
            transport.stop(STOP_TIMEOUT_S)
        finally:
            transport.kill()

    @property
    def pid(self) -> int | None:
        """The worker's process id (on its host), or None without a worker."""
        return self.transport.pid if self.transport is not None else None

    @property
    def runs_in(self) -> str:
        """Where the node runs, for messages: "worker pid N", "Ray actor pid N"."""
        return self.transport.runs_in if self.transport is not None else "no worker"

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered, written-off ones excluded."""
        return sum(1 for r in self._inflight.values() if not r.abandoned)

    def executor_stats(self) -> dict:
        """This hop's figures for the node's report: executor (name), queue {size, policy},
        drops (frames this hop dropped: full queue, crashes, errors), restarts, and
        round_trip_us {p50, p95, p99, max} (zeros before the first answer)."""
        summary = self.round_trip.summary_us()
        zero = {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
        return {"executor": self.transport_class.name,
                "queue": {"size": self._queue, "policy": self._policy},
                "drops": self.drops, "restarts": self.restarts,
                "round_trip_us": summary.as_dict() if summary else zero}

    # -- the hot path ----------------------------------------------------------------------------
    def process(self, data):
        """Sends the frame under the queue policy and returns the answers that are in within
        reply_wait_s (RuntimeData, in request order). Runs on the thread that pushes and waits
        there at most reply_wait_s (longer under `block` with a full queue). A dead or silent
        worker: its frames in flight count as drops, then on_error applies (ExecutorCrashed
        under fail; RemoteNodeError for a node that raised)."""
        counters = self.context.counters if self.context is not None else None
        self._counters = counters
        out: list = []
        sent = False
        try:
            self._check_alive()
            self._collect(out, counters, self.collect_limit())
            if self.in_flight >= self._queue and not self._make_room(out, counters):
                self._dropped(data, counters)
                return out
            try:
                rid = self._send(data, counters)
            except CodecError:
                # A frame that cannot cross is that frame's error, as if the node had raised.
                if self._on_error == "fail":
                    raise
                self.errors_absorbed += 1
                if counters is not None:
                    counters.errors += 1
                self._dropped(data, counters)
                return out
            sent = True
            if self.reply_wait_s > 0:
                self._wait(out, counters, lambda: rid not in self._inflight, self.reply_wait_s)
            return out
        except WorkerDied as died:
            self._salvage(out, counters)
            try:
                self._crashed(died.reason, counters)   # raises under on_error "fail"
            except ExecutorCrashed:
                if sent and self._release and self._on_error == "skip":
                    # The engine gives back the slot of a frame whose node failed under skip;
                    # it was given back already with the requests lost in the crash.
                    data._ownership.readers += 1
                raise
            if not sent:   # the new worker takes the frame the old one never got
                out.extend(self.process(data))
            return out

    def on_control(self, event, _retry: bool = True):
        """Forwards the control event to the worker; flush and end_of_stream (every event)
        wait until nothing is in flight and return every answer. Failures as in process()."""
        counters = self.context.counters if self.context is not None else None
        self._counters = counters
        out: list = []
        try:
            self._check_alive()
            if self.in_flight >= self._queue:
                self._wait(out, counters, lambda: self.in_flight < self._queue, None)
            self._send(event, counters)
            self._wait(out, counters, lambda: not self._inflight, None)
        except WorkerDied as died:
            self._salvage(out, counters)
            self._crashed(died.reason, counters)   # raises under on_error "fail"
            if _retry:   # the new worker's node sees the event too
                out.extend(self.on_control(event, _retry=False))
        return out

    @staticmethod
    def collect_limit() -> int | None:
        """How many answers process() hands on at most (None: all that are in); the engine
        sets it to the output's room (Schedule.poll_room), so audio made ahead waits here."""
        return None

    def poll(self, limit: int | None = None) -> list | None:
        """The answers that are in, without sending anything or waiting (at most `limit`
        outputs; None: all): the engine polls a node on an executor after each push, so a node
        that is not called every block hands on its outputs as they are made. None when there
        is nothing. Failures as in process()."""
        transport = self.transport
        if not self._inflight or transport is None or not transport.ready():
            return None
        counters = self._counters
        out: list = []
        try:
            self._check_alive()
            self._collect(out, counters, limit)
        except WorkerDied as died:
            self._salvage(out, counters)
            self._crashed(died.reason, counters)   # raises under on_error "fail"
        return out or None

    def interrupt(self) -> tuple[int, int]:
        """Barge-in (a Control `interrupt`, engine/bargein.py): every request in flight is
        written off (its answers are discarded; nothing counts as a drop of the input: the
        reply is abandoned on purpose), the worker drops what it has queued and made and not
        handed back (the thread executor also stops the call it is on at its next output),
        and the wrapped node sees the interrupt on its worker. Returns the audio dropped as
        (blocks, samples). Runs on the thread that pushes; never waits."""
        transport = self.transport
        if transport is None:
            return 0, 0
        dropped = transport.interrupt()
        for request in self._inflight.values():
            request.abandoned = True
            self._end(request)
        self._inflight.clear()
        self.interrupts += 1
        try:
            self._send(_INTERRUPT, self._counters)
        except CodecError:
            pass
        return dropped

    def _send(self, data, counters) -> int:
        rid = self._next_id
        self._next_id += 1
        is_frame = type(data) is NumpyData
        request = Request(rid, time.perf_counter_ns(), is_frame,
                          data if is_frame and self._release else None)
        self.transport.send(request, data, counters)   # may raise: then nothing is in flight
        self._inflight[rid] = request
        return rid

    def _make_room(self, out, counters) -> bool:
        """Apply the queue policy with `queue_size` requests in flight; False drops the frame
        (drop_newest). drop_oldest writes off the oldest frame in flight."""
        if self._policy == "block":
            self._wait(out, counters, lambda: self.in_flight < self._queue, None)
            return True
        if self._policy == "drop_newest":
            return False
        # drop_oldest: the oldest frame the worker has not started is withdrawn (its work is
        # not wasted); where the transport cannot withdraw one, the oldest in flight is written
        # off and its answer discarded.
        live = [r for r in self._inflight.values() if not r.abandoned]
        transport = self.transport
        for request in live:
            if request.is_frame and transport.abandon(request):
                del self._inflight[request.rid]
                break
        else:
            request = live[0]
        request.abandoned = True
        self._count_drop(request, counters)
        if request.rid not in self._inflight:
            self._end(request)
        return True

    def _dropped(self, data, counters) -> None:
        """drop_newest: the incoming frame is not sent."""
        if type(data) is NumpyData:
            self.drops += 1
            if counters is not None:
                counters.drops += 1
            if self._release:
                data._ownership.readers -= 1

    def _count_drop(self, request: Request, counters) -> None:
        if request.is_frame:
            self.drops += 1
            if counters is not None:
                counters.drops += 1

    def _end(self, request: Request) -> None:
        """A request is over: give back the reader slot its frame held."""
        frame = request.frame
        if frame is not None:
            request.frame = None
            frame._ownership.readers -= 1

    def _lose_inflight(self, counters) -> int:
        """Every request in flight is lost (crash, teardown): frames not yet written off count
        as drops. Returns how many."""
        lost = 0
        for request in self._inflight.values():
            if request.is_frame and not request.abandoned:
                lost += 1
                self._count_drop(request, counters)
            self._end(request)
        self._inflight.clear()
        return lost

    def _check_alive(self) -> None:
        transport = self.transport
        if transport is None:
            raise WorkerDied("has no worker (a restart failed earlier)")
        transport.check()
        if self._inflight and self.deadline_s > 0:
            oldest = next(iter(self._inflight.values()))
            silent_since = max(oldest.sent_ns, self._last_answer_ns)
            if (time.perf_counter_ns() - silent_since) / 1e9 > self.deadline_s:
                where = transport.runs_in
                self._discard()
                raise WorkerDied(f"{where} did not answer within {self.deadline_s * 1000:g} "
                                 f"ms and was {transport.ended_by}")

    def _wait(self, out, counters, done: Callable[[], bool], timeout_s: float | None) -> None:
        """Collect answers until done() or timeout_s (None: as long as the worker lives)."""
        start = time.perf_counter()
        while True:
            self._collect(out, counters)
            if done():
                return
            left = POLL_S
            if timeout_s is not None:
                left = timeout_s - (time.perf_counter() - start)
                if left <= 0:
                    return
            self._check_alive()
            self.transport.wait(min(left, POLL_S), self._inflight)

    def _collect(self, out, counters, limit: int | None = None) -> None:
        """Take the answers that are in: outputs of live requests into `out`, in order (at
        most about `limit` outputs; None: all)."""
        inflight = self._inflight
        if limit is not None and limit <= 0:
            return
        for reply in self.transport.receive(inflight, counters):
            now = time.perf_counter_ns()
            self._last_answer_ns = now
            request = inflight.get(reply.rid)
            if request is None:
                continue   # an answer to a request already written off
            # Answers come in order: anything older still in flight was overwritten unread.
            while True:
                first = next(iter(inflight.values()))
                if first is request:
                    break
                del inflight[first.rid]
                if not first.abandoned:
                    self._count_drop(first, counters)
                self._end(first)
            if reply.last:
                del inflight[reply.rid]
                self._end(request)
                if request.is_frame and reply.error is None:
                    self.round_trip.add(now - request.sent_ns)
            if reply.error is not None:
                self._node_raised(request, reply, counters)
            elif not request.abandoned:
                out.extend(reply.outputs)
            if limit is not None and len(out) >= limit:
                return   # the rest stays with the transport for the next poll

    # -- the failure policy ----------------------------------------------------------------------
    def _salvage(self, out, counters) -> None:
        """Before a dead worker's requests are written off: take the answers it gave before it
        died (they are not lost)."""
        if self.transport is None:
            return
        try:
            self._collect(out, counters)
        except WorkerDied:
            pass
    def _node_raised(self, request: Request, reply: Reply, counters) -> None:
        if self._on_error == "fail":
            raise RemoteNodeError(f"{reply.error} (in {self.runs_in})") from reply.cause
        self.errors_absorbed += 1
        if counters is not None:
            counters.errors += 1
        if not request.abandoned:
            self._count_drop(request, counters)

    def _crashed(self, reason: str, counters) -> None:
        lost = self._lose_inflight(counters)
        self._discard()
        message = f"{reason}; {lost} frame(s) in flight lost"
        if self._on_error == "fail":
            raise ExecutorCrashed(message)
        self.errors_absorbed += 1
        if counters is not None:
            counters.errors += 1
        now = time.monotonic()
        times = self._restart_times
        while times and now - times[0] > RESTART_WINDOW_S:
            times.popleft()
        if len(times) >= MAX_RESTARTS:
            raise ExecutorCrashed(f"{message}; not restarted: {len(times)} restarts in the "
                                  f"last {RESTART_WINDOW_S:g} s")
        times.append(now)
        self.restarts += 1
        self._start()


# Workers still running when the interpreter exits (a session never closed) are ended, so a
# process's files or an actor's resources do not outlive the driver.
_live: "weakref.WeakSet[RemoteNode]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for node in list(_live):
        node._discard()


def check_spec(spec, executor: str, where: str) -> None:
    """Refuse what a remote executor cannot run: a fan-in node, or a class defined in __main__
    (which `where`, "a worker process", cannot import; pass None where it can). Raises
    ExecutorStartError naming the node."""
    if spec.node_class.inputs == "many":
        raise ExecutorStartError(f"node '{spec.id}': {spec.node_type} takes several inputs, "
                                 f"which executor '{executor}' does not support")
    if where is not None and spec.node_class.__module__ == "__main__":
        raise ExecutorStartError(f"node '{spec.id}': {spec.node_class.__qualname__} is defined "
                                 f"in __main__; {where} can only import it from a module")


def executor_factory(base: type[RemoteNode], prefix: str,
                     where: str | None) -> Callable[..., RemoteNode]:
    """The `remotemedia.executors` entry point for `base`: a function of a manifest NodeSpec
    that checks it (check_spec) and returns a `base` subclass instance that looks like the
    wrapped class to the engine (name, params, inputs, accepts, requires); the subclass is
    made once per wrapped class, named `prefix` + its name."""
    classes: dict[type, type] = {}

    def make_executor_node(spec) -> RemoteNode:
        check_spec(spec, base.transport_class.name, where)
        cls = spec.node_class
        proxy = classes.get(cls)
        if proxy is None:
            proxy = classes[cls] = type(f"{prefix}{cls.__name__}", (base,), {
                "wrapped": cls, "node_type": cls.node_type, "description": cls.description,
                "params": cls.params, "inputs": cls.inputs, "accepts": cls.accepts,
                "requires": cls.requires, "__module__": base.__module__,
            })
        return proxy(spec)

    make_executor_node.__doc__ = f"The engine's entry point for `executor: " \
                                 f"{base.transport_class.name}`: a {base.__name__} for `spec`."
    return make_executor_node


def lazy_exports(package: str, module: str, names) -> Callable[[str], object]:
    """A module `__getattr__` for `package` that imports `names` from its submodule `module`
    on first use. remotemedia.ipc and remotemedia.ray re-export their executor nodes this way:
    the executor modules import those packages' other modules, so an eager re-export would
    import itself back."""
    def __getattr__(name: str):
        if name in names:
            from importlib import import_module
            return getattr(import_module(f"{package}.{module}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
