"""The node that stands in for a node running in its own process.

`make_executor_node(spec)` returns a `ProcessNode` whose class carries the wrapped class's
`node_type`, `inputs`, `accepts` and `requires`, so the engine schedules it like the real node.

Frames in flight. `process(frame)` copies the frame into a loaned sample (one `io` copy), sends
it, and then waits up to REPLY_WAIT_S for its answer, so a fast node's outputs leave in the same
`push`; a slower node's outputs leave with a later `push`, or with `flush`/`end_of_stream`, which
wait until nothing is in flight. Each numpy output the worker writes into shared memory counts one
more `io` copy and reaches the engine as a read-only view onto that memory (no further copy),
unless the engine already holds REP_BORROW - 1 such views, in which case it is copied out and the
copy counted. At most `queue_size` requests are in flight; when that many are, `queue_policy`
decides: `block` waits for a slot, `drop_newest` drops the incoming frame, `drop_oldest` abandons
the oldest frame in flight (its result is discarded when it comes back, or it is overwritten in
the worker's queue before it is read). Every dropped frame counts in `drops`.

Views and the borrow limit. An output view keeps its sample borrowed until it is collected; an
engine that keeps many outputs (a caller collecting them in a list) would run the worker's pool
dry, so from REP_BORROW - 1 views on, outputs are copied out instead, each copy counted as one
more `io` copy. Outputs let go as they are used (a sink, the next node) cost nothing extra.

Failures. The worker's exit is noticed at the next call, and within POLL_S while waiting; a
worker that stays silent for DEADLINE_S with requests in flight (nothing answered since the
oldest went out, or since its last answer) is killed and counts as crashed. The
frames in flight with a crashed worker count as drops, the crash counts as an error, and then
`on_error` applies: `fail` raises `WorkerCrashed` (the session turns it into a `NodeError` naming
the node and breaks); `restart` and `skip` start a new worker, which handshakes before the next
frame (more than MAX_RESTARTS restarts within RESTART_WINDOW_S raise instead). A node that raises
inside the worker fails the session under `fail` and drops that one frame under `skip` and
`restart`, counted as an error and a drop.

Settings come from the environment when a worker starts: REMOTEMEDIA_IPC_DEADLINE_MS,
REMOTEMEDIA_IPC_REPLY_WAIT_MS, REMOTEMEDIA_IPC_START_TIMEOUT_MS, REMOTEMEDIA_IPC_SPIN_US (0 never
busy-polls: each answer then wakes the waiting side through its event listener).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
import weakref
from collections import OrderedDict

from ..engine.data import NumpyData
from ..remote_node import (MAX_RESTARTS, RESTART_WINDOW_S, RemoteFailures,  # noqa: F401
                           check_remote_spec, proxy_class)
from ..engine.errors import RemoteMediaError
from ..engine.node import DEFAULT_BLOCK_SIZE, AudioFormat, Node
from ..engine.serialization import record_encode
from . import channel, codec, wire

DEADLINE_S = 2.0          # a request unanswered this long means the worker hangs
REPLY_WAIT_S = 0.010      # how long process() waits for the frame it just sent: half a 20 ms frame
START_TIMEOUT_S = 30.0    # from spawn to READY (imports and the node's setup())
STOP_TIMEOUT_S = 2.0      # from STOP to exit, before SIGKILL
SPIN_S = 0.0002           # busy-poll up to this long before sleeping (see channel.Spinner)
POLL_S = 0.005            # the longest sleep between liveness checks while waiting
HEADER_ROOM = 4096        # header bytes budgeted beyond the payload when sizing the pool


class WorkerError(RemoteMediaError):
    """The worker process of a node failed; the session wraps it in a NodeError."""


class WorkerCrashed(WorkerError):
    """The worker died, or stopped answering, with frames in flight."""


class WorkerStartError(WorkerError):
    """The worker could not start, import or set up its node."""


class RemoteNodeError(WorkerError):
    """The node raised inside its worker; the message carries its type and text."""


class _Died(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) / 1000.0 if value else default


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Request:
    __slots__ = ("sent_ns", "is_frame", "abandoned")

    def __init__(self, sent_ns: int, is_frame: bool):
        self.sent_ns = sent_ns
        self.is_frame = is_frame
        self.abandoned = False


class _Worker:
    """One worker incarnation: its process, its domain and the parent's ports."""

    def __init__(self, spec, fmt: AudioFormat, max_slice_len: int, spin_s: float,
                 prefix: str, token: str):
        self.prefix, self.token = prefix, token
        self.node = channel.make_node(self.prefix)
        names = channel.service_names(token, spec.id)
        queue = spec.queue_size
        self.req = channel.pubsub(self.node, names["req"], buffer=queue + 2,
                                  borrow=queue + channel.REQ_BORROW_SLACK, safe_overflow=True,
                                  create=True)
        self.rep = channel.pubsub(self.node, names["rep"], buffer=channel.REP_BUFFER,
                                  borrow=channel.REP_BORROW, safe_overflow=False, create=True)
        self.req_ev = channel.event(self.node, names["req_ev"], create=True)
        self.rep_ev = channel.event(self.node, names["rep_ev"], create=True)
        self.pub = channel.publisher(self.req, max_slice_len, block=False)
        self.sub = self.rep.subscriber_builder().buffer_size(channel.REP_BUFFER).create()
        self.notifier = self.req_ev.notifier_builder().create()
        self.listener = self.rep_ev.listener_builder().create()
        cls = spec.node_class
        config = {
            "node_class": f"{cls.__module__}:{cls.__qualname__}",
            "node_type": spec.node_type,
            "node_id": spec.id,
            "params": dict(spec.params),
            "format": {"sample_rate": fmt.sample_rate, "channels": fmt.channels,
                       "block_size": fmt.block_size},
            "prefix": self.prefix,
            "token": token,
            "parent_pid": os.getpid(),
            "queue_size": queue,
            "max_slice_len": max_slice_len,
            "sys_path": [p for p in sys.path if isinstance(p, str)],
            "spin_s": spin_s,
        }
        # Its own session: a Ctrl-C in the terminal reaches the engine, which stops the worker.
        # Its stdout goes to stderr: the engine's stdout may be an audio stream (raw:-).
        self.proc = subprocess.Popen([sys.executable, "-m", "remotemedia.ipc.worker"],
                                     stdin=subprocess.PIPE, stdout=2, start_new_session=True,
                                     close_fds=True)
        self.pid = self.proc.pid
        self.proc.stdin.write(json.dumps(config).encode())
        self.proc.stdin.close()

    def exit_code(self):
        return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        """Drop the ports, then remove every file of the domain (a dead worker leaves some)."""
        for name in ("listener", "notifier", "sub", "pub", "req_ev", "rep_ev", "req", "rep",
                     "node"):
            setattr(self, name, None)
        channel.remove_domain(self.prefix)


class ProcessNode(RemoteFailures, Node):
    """Stands in for `wrapped` (a Node class) running in a worker process."""

    wrapped: type[Node] = Node
    retains_input = False   # the frame is copied into shared memory before process() returns

    def __init__(self, spec):
        self.node_id = spec.id
        self.spec = spec
        self.config = dict(spec.params)
        self.format = AudioFormat()
        self.worker: _Worker | None = None
        self._init_failures()
        self._inflight: OrderedDict[int, _Request] = OrderedDict()
        self._next_id = 1
        self._borrowed = channel.Borrowed()
        self._counters = None
        self._last_answer_ns = 0
        self._policy = spec.queue_policy
        self._queue = spec.queue_size
        self._on_error = spec.on_error

    # -- lifecycle -------------------------------------------------------------------------------
    def setup(self) -> None:
        """Reads the REMOTEMEDIA_IPC_* settings (ms or us in the environment, seconds here),
        creates the iceoryx2 channel and spawns the worker, waiting up to start_timeout_s for its
        READY (imports and the wrapped node's setup()). Raises a RemoteMediaError naming the
        node if the worker does not come up."""
        self.deadline_s = _env_seconds("REMOTEMEDIA_IPC_DEADLINE_MS", DEADLINE_S)
        self.reply_wait_s = _env_seconds("REMOTEMEDIA_IPC_REPLY_WAIT_MS", REPLY_WAIT_S)
        self.start_timeout_s = _env_seconds("REMOTEMEDIA_IPC_START_TIMEOUT_MS", START_TIMEOUT_S)
        self.spin_s = _env_seconds("REMOTEMEDIA_IPC_SPIN_US", SPIN_S * 1e3) / 1e3
        self._spinner = channel.Spinner(self.spin_s)
        self._spin_next = False
        self._sent_at = 0.0
        fmt = self.format
        frame_bytes = (fmt.block_size or DEFAULT_BLOCK_SIZE) * (fmt.channels or 1) * 8
        self._max_slice_len = frame_bytes + HEADER_ROOM
        channel.remove_stale_domains()
        self._start()

    def _start(self) -> None:
        prefix, token = channel.new_prefix()
        try:
            worker = _Worker(self.spec, self.format, self._max_slice_len, self.spin_s, prefix,
                             token)
        except BaseException:
            channel.remove_domain(prefix)   # whatever ports were made before the failure
            raise
        self.worker = worker
        _live.add(self)
        try:
            self._handshake(worker)
        except BaseException:
            self._discard_worker()
            raise
        channel.tighten_permissions(worker.prefix)

    def _handshake(self, worker: _Worker) -> None:
        give_up = time.monotonic() + self.start_timeout_s
        timeout = channel.iox.Duration.from_secs_f64(POLL_S * 4)
        while True:
            code = worker.exit_code()   # read before receiving: a worker that failed said why
            got = wire.receive(worker.sub, self._borrowed)
            if got is not None:
                h, data, _ = got
                if h.kind == codec.READY:
                    worker.pub.update_connections()
                    return
                if h.kind == codec.ERROR:   # the worker waits to be stopped: _start kills it
                    raise WorkerStartError(f"worker for {self.spec.node_type} could not start: "
                                           f"{data['type']}: {data['message']}")
                continue
            if code is not None:
                raise WorkerStartError(f"worker for {self.spec.node_type} {_describe_exit(code)} "
                                       f"before it was ready")
            if time.monotonic() > give_up:
                raise WorkerStartError(f"worker for {self.spec.node_type} was not ready within "
                                       f"{self.start_timeout_s:g} s")
            worker.listener.timed_wait(timeout)

    def _discard_worker(self) -> None:
        _live.discard(self)
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.kill()
            worker.close()

    def teardown(self) -> None:
        """Counts the frames still in flight as drops, asks the worker to stop (SIGKILL after
        STOP_TIMEOUT_S) and closes its channel. Safe to call twice."""
        worker = self.worker
        if worker is None:
            return
        lost = sum(1 for r in self._inflight.values() if r.is_frame and not r.abandoned)
        self._inflight.clear()
        if lost and self._counters is not None:
            self._counters.drops += lost
        try:
            if worker.exit_code() is None:
                wire.send_bytes(worker.pub, codec.STOP, self._take_id(), flags=codec.LAST)
                worker.notifier.notify()
                give_up = time.monotonic() + STOP_TIMEOUT_S
                while worker.exit_code() is None and time.monotonic() < give_up:
                    # Read what is still coming, so a worker waiting to deliver can reach STOP.
                    while wire.receive(worker.sub, self._borrowed, copy_out=True) is not None:
                        pass
                    worker.listener.timed_wait(channel.iox.Duration.from_secs_f64(POLL_S))
        finally:
            self._discard_worker()

    @property
    def pid(self) -> int | None:
        """The worker process id, or None without a worker."""
        return self.worker.pid if self.worker is not None else None

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered, abandoned ones excluded."""
        return sum(1 for r in self._inflight.values() if not r.abandoned)

    # -- the hot path ----------------------------------------------------------------------------
    def process(self, data):
        """Copies the frame into shared memory (one io copy), sends it under the queue policy and
        returns whatever answers arrived within reply_wait_s: numpy outputs as read-only views
        onto shared memory (or counted copies past the borrow limit). Runs on the thread that
        pushes and may wait there up to reply_wait_s (longer under `block` with a full queue).
        A crashed or silent worker: frames in flight count as drops, then on_error applies
        (WorkerCrashed under fail)."""
        counters = self.context.counters if self.context is not None else None
        self._counters = counters
        out: list = []
        sent = False
        try:
            self._check_alive()
            self._drain(out, counters)
            if self.in_flight >= self._queue:
                if not self._make_room(out, counters):
                    return out
            try:
                rid = self._send(data, counters)
            except codec.CodecError:
                if self._on_error != "restart":
                    raise   # the session counts it (and drops the frame under skip)
                if counters is not None:   # restart: like a node error, this frame only
                    counters.errors += 1
                    self.errors_absorbed += 1
                    counters.drops += type(data) is NumpyData
                return out
            sent = True
            if self.reply_wait_s > 0:
                self._wait(out, counters, lambda: rid not in self._inflight, self.reply_wait_s)
            return out
        except _Died as died:
            self._crashed(died.reason, counters)   # raises under on_error "fail"
            if not sent:   # the new worker takes the frame the old one never got
                out.extend(self.process(data))
            return out

    def on_control(self, event, _retry: bool = True):
        """Forwards the control event to the worker; flush and end_of_stream wait until nothing is
        in flight and return every answer. Failures as in process()."""
        counters = self.context.counters if self.context is not None else None
        self._counters = counters
        out: list = []
        try:
            self._check_alive()
            if self.in_flight >= self._queue:
                self._wait(out, counters, lambda: self.in_flight < self._queue, None)
            self._send(event, counters)
            self._wait(out, counters, lambda: not self._inflight, None)
        except _Died as died:
            self._crashed(died.reason, counters)   # raises under on_error "fail"
            if _retry:   # the new worker's node sees the event too
                out.extend(self.on_control(event, _retry=False))
        return out

    def _take_id(self) -> int:
        rid = self._next_id
        self._next_id += 1
        return rid

    def _send(self, data, counters) -> int:
        rid = self._take_id()
        worker = self.worker
        # Decided per request and told to the worker, which spins for the next one only then.
        self._spin_next = self._spinner.choose()
        self._sent_at = time.perf_counter()   # the send counts: waking a sleeper costs there
        wire.send_data(worker.pub, data, rid, flags=codec.SPIN if self._spin_next else 0)
        is_frame = type(data) is NumpyData
        if is_frame and counters is not None:
            counters.io += 1
        self._inflight[rid] = _Request(time.perf_counter_ns(), is_frame)
        worker.notifier.notify()
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

    def _check_alive(self) -> None:
        worker = self.worker
        if worker is None:
            raise _Died("has no worker (a restart failed earlier)")
        code = worker.exit_code()
        if code is not None:
            raise _Died(f"worker pid {worker.pid} {_describe_exit(code)}")
        if self._inflight:
            # Silent since the oldest request went out, or since the last answer if later: a
            # slow node that keeps answering is busy, not hung.
            oldest = next(iter(self._inflight.values()))
            silent_since = max(oldest.sent_ns, self._last_answer_ns)
            if (time.perf_counter_ns() - silent_since) / 1e9 > self.deadline_s:
                worker.kill()
                raise _Died(f"worker pid {worker.pid} did not answer within "
                            f"{self.deadline_s * 1000:g} ms and was killed")

    def _wait(self, out, counters, done, timeout_s) -> None:
        """Collect replies until done() or timeout_s (None: as long as the worker lives)."""
        start = time.perf_counter()
        spun = self._spin_next
        spin_end = start + self.spin_s if spun else start
        worker = self.worker
        iox_poll = channel.iox.Duration.from_secs_f64(POLL_S)
        while True:
            self._drain(out, counters)
            if done():
                self._spinner.record(spun, time.perf_counter() - self._sent_at)
                return
            now = time.perf_counter()
            if timeout_s is not None and now - start >= timeout_s:
                return
            if now < spin_end:
                # Yield, not burn: with both cores busy the worker may need this one to answer.
                os.sched_yield()
                continue
            self._check_alive()
            if timeout_s is not None and timeout_s - (now - start) < POLL_S:
                worker.listener.timed_wait(channel.iox.Duration.from_secs_f64(
                    max(timeout_s - (now - start), 1e-6)))
            else:
                worker.listener.timed_wait(iox_poll)

    def _drain(self, out, counters) -> None:
        worker = self.worker
        inflight = self._inflight
        borrowed = self._borrowed
        while True:
            copy_out = borrowed.count() >= channel.REP_BORROW - 1
            got = wire.receive(worker.sub, borrowed, copy_out=copy_out)
            if got is None:
                return
            h, data, copied = got
            self._last_answer_ns = time.perf_counter_ns()
            if counters is not None:
                counters.io += (h.kind == codec.NUMPY) + copied + h.worker_io
                counters.cow += h.cow
            for _ in range(h.worker_ser):
                record_encode(None, "ipc-worker")
            rid = h.request_id
            request = inflight.get(rid)
            if request is None:
                continue   # an answer to a request already written off
            # Answers come in order: anything older still in flight was overwritten unread.
            while True:
                first_id = next(iter(inflight))
                if first_id == rid:
                    break
                lost = inflight.pop(first_id)
                if lost.is_frame and not lost.abandoned and counters is not None:
                    counters.drops += 1
            if h.kind == codec.ERROR:
                if h.last:
                    del inflight[rid]
                self._node_raised(request, f"{data['type']}: {data['message']}", counters)
            elif not request.abandoned and data is not None and h.kind != codec.DONE:
                out.append(data)
            if h.last and rid in inflight:
                del inflight[rid]

    # The failure policy (RemoteFailures) names where the node runs and drops it so.
    raised_error = RemoteNodeError
    crashed_error = WorkerCrashed

    @property
    def runs_in(self) -> str:
        """Where the node runs, for messages: "worker pid N"."""
        return f"worker pid {self.pid}"

    def _discard(self) -> None:
        self._discard_worker()


# Workers still running when the interpreter exits (a session never closed) are stopped, so
# their files go with them instead of waiting for the next start's stale-domain sweep.
_live: "weakref.WeakSet[ProcessNode]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for node in list(_live):
        node.teardown()


_proxy_classes: dict[type, type] = {}


def make_executor_node(spec) -> ProcessNode:
    """The engine's entry point for `executor: process`."""
    check_remote_spec(spec, "process", "a worker process", WorkerStartError)
    return proxy_class(ProcessNode, spec.node_class, "Process", _proxy_classes)(spec)
