"""`executor: process`: the node runs in its own Python process, frames in iceoryx2 shared memory.

The transport over remotemedia/ipc (codec, channel, wire, worker); queue policy, failure policy,
accounting and stats are RemoteNode's (base.py).

Frames in flight. `process(frame)` copies the frame into a loaned sample (one `io` copy), sends
it, and then waits up to REPLY_WAIT_S for its answer, so a fast node's outputs leave in the same
`push`. Each numpy output the worker writes into shared memory counts one more `io` copy and
reaches the engine as a read-only view onto that memory (no further copy), unless the engine
already holds REP_BORROW - 1 such views, in which case it is copied out and the copy counted.
Under `drop_oldest` a frame written off is overwritten in the worker's queue before it is read,
or its answer discarded.

Views and the borrow limit. An output view keeps its sample borrowed until it is collected; an
engine that keeps many outputs (a caller collecting them in a list) would run the worker's pool
dry, so from REP_BORROW - 1 views on, outputs are copied out instead, each copy counted as one
more `io` copy. Outputs let go as they are used (a sink, the next node) cost nothing extra.

Failures. The worker's exit is noticed at the next call, and within POLL_S while waiting; a
worker silent for DEADLINE_S with requests in flight is killed and counts as crashed. A frame
that cannot cross (CodecError: an object array, a key that is not a string) is that frame's
error, as if the node had raised. A node that raises inside the worker: `RemoteNodeError`.

Settings from the environment when a worker starts, besides RemoteNode's (REMOTEMEDIA_IPC_*):
REMOTEMEDIA_IPC_SPIN_US (0 never busy-polls: each answer then wakes the waiting side through
its event listener; see `channel.Spinner`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from ..engine.errors import ExecutorStartError
from ..engine.node import DEFAULT_BLOCK_SIZE, AudioFormat
from ..engine.serialization import record_encode
from ..ipc import channel, codec, wire
from ..engine.errors import WorkerDied
from .base import (POLL_S, RemoteNode, Reply, Transport, env_seconds, executor_factory,
                   translate)

SPIN_S = 0.0002           # busy-poll up to this long before sleeping (see channel.Spinner)
HEADER_ROOM = 4096        # header bytes budgeted beyond the payload when sizing the pool


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Worker:
    """One worker process: its process, its domain and the parent's ports."""

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


# Where a worker cannot be spawned (no interpreter, no file descriptors left).
_START_ERRORS = {OSError: ExecutorStartError}


class ProcessTransport(Transport):
    """One worker process and its iceoryx2 domain (see the module docstring)."""

    name = "process"
    env = "IPC"
    deadline_s = 2.0          # a request unanswered this long means the worker hangs
    reply_wait_s = 0.010      # half a 20 ms block
    start_timeout_s = 30.0    # from spawn to READY (imports and the node's setup())

    def __init__(self, node: RemoteNode):
        super().__init__(node)
        self.worker: _Worker | None = None
        self.borrowed = channel.Borrowed()
        self.spin_s = env_seconds("REMOTEMEDIA_IPC_SPIN_US", SPIN_S * 1e3) / 1e3
        self._spinner = channel.Spinner(self.spin_s)
        self._spin_next = False
        self._sent_at = 0.0
        self._last_rid = 0

    @property
    def pid(self) -> int | None:
        """The worker process id, or None without a worker."""
        return self.worker.pid if self.worker is not None else None

    @property
    def runs_in(self) -> str:
        """Where the node runs, for messages: "worker pid N"."""
        return f"worker pid {self.pid}"

    def start(self) -> None:
        """Creates the domain and spawns the worker; waits for READY. ExecutorStartError when
        the worker cannot be spawned, says ERROR (its node would not import or set up), exits,
        or is not ready within the node's start_timeout_s."""
        node = self.node
        if node.restarts == 0:
            channel.remove_stale_domains()
        fmt = node.format
        max_slice_len = (fmt.block_size or DEFAULT_BLOCK_SIZE) * (fmt.channels or 1) * 8 + HEADER_ROOM
        prefix, token = channel.new_prefix()
        try:
            with translate(_START_ERRORS, f"worker for {node.spec.node_type} could not start"):
                self.worker = _Worker(node.spec, fmt, max_slice_len, self.spin_s, prefix,
                                      token)
        except BaseException:
            channel.remove_domain(prefix)   # whatever ports were made before the failure
            raise
        self._handshake(self.worker)
        channel.tighten_permissions(prefix)

    def _handshake(self, worker: _Worker) -> None:
        node_type = self.node.spec.node_type
        timeout_s = self.node.start_timeout_s
        give_up = time.monotonic() + timeout_s
        timeout = channel.iox.Duration.from_secs_f64(POLL_S * 4)
        while True:
            code = worker.exit_code()   # read before receiving: a worker that failed said why
            got = wire.receive(worker.sub, self.borrowed)
            if got is not None:
                h, data, _ = got
                if h.kind == codec.READY:
                    worker.pub.update_connections()
                    return
                if h.kind == codec.ERROR:   # the worker waits to be stopped: kill() does
                    raise ExecutorStartError(f"worker for {node_type} could not start: "
                                             f"{data['type']}: {data['message']}")
                continue
            if code is not None:
                raise ExecutorStartError(f"worker for {node_type} {_describe_exit(code)} "
                                         f"before it was ready")
            if time.monotonic() > give_up:
                raise ExecutorStartError(f"worker for {node_type} was not ready within "
                                         f"{timeout_s:g} s")
            worker.listener.timed_wait(timeout)

    def send(self, request, data, counters) -> None:
        """Writes the data into a loaned sample (one `io` copy for a frame) and wakes the
        worker; CodecError for data that cannot cross."""
        worker = self.worker
        # Decided per request and told to the worker, which spins for the next one only then.
        self._spin_next = self._spinner.choose()
        self._sent_at = time.perf_counter()   # the send counts: waking a sleeper costs there
        self._last_rid = request.rid
        wire.send_data(worker.pub, data, request.rid,
                       flags=codec.SPIN if self._spin_next else 0)
        if request.is_frame and counters is not None:
            counters.io += 1
        worker.notifier.notify()

    def receive(self, requests, counters):
        """Every answer sample that is in, as Reply objects: numpy outputs as read-only
        views onto shared memory (copied out and counted past the borrow limit); the worker's
        own copies and serialization events are counted here."""
        worker, borrowed = self.worker, self.borrowed
        while True:
            copy_out = borrowed.count() >= channel.REP_BORROW - 1
            got = wire.receive(worker.sub, borrowed, copy_out=copy_out)
            if got is None:
                return
            h, data, copied = got
            if counters is not None:
                counters.io += (h.kind == codec.NUMPY) + copied + h.worker_io
                counters.cow += h.cow
            for _ in range(h.worker_ser):
                record_encode(None, "ipc-worker")
            rid = h.request_id
            if h.last and rid == self._last_rid:
                self._spinner.record(self._spin_next, time.perf_counter() - self._sent_at)
            if h.kind == codec.ERROR:
                yield Reply(rid, [], f"{data['type']}: {data['message']}", last=h.last)
            elif data is not None and h.kind != codec.DONE:
                yield Reply(rid, [data], last=h.last)
            else:
                yield Reply(rid, [], last=h.last)

    def wait(self, timeout_s: float, requests) -> None:
        """Yields the CPU while inside the spin window after a send, else sleeps on the
        answer event listener, at most timeout_s."""
        if self._spin_next and time.perf_counter() < self._sent_at + self.spin_s:
            # Yield, not burn: with both cores busy the worker may need this one to answer.
            os.sched_yield()
            return
        self.worker.listener.timed_wait(
            channel.iox.Duration.from_secs_f64(max(timeout_s, 1e-6)))

    def check(self) -> None:
        """WorkerDied when the worker process has exited (how, from its exit status)."""
        worker = self.worker
        code = worker.exit_code()
        if code is not None:
            raise WorkerDied(f"worker pid {worker.pid} {_describe_exit(code)}")

    def stop(self, timeout_s: float) -> None:
        """Asks the worker to stop (its node's teardown() runs there) and reads what it still
        sends, for up to timeout_s; kill() then ends it if it has not."""
        worker = self.worker
        if worker is None or worker.exit_code() is not None:
            return
        wire.send_bytes(worker.pub, codec.STOP, 0, flags=codec.LAST)
        worker.notifier.notify()
        give_up = time.monotonic() + timeout_s
        while worker.exit_code() is None and time.monotonic() < give_up:
            # Read what is still coming, so a worker waiting to deliver can reach STOP.
            while wire.receive(worker.sub, self.borrowed, copy_out=True) is not None:
                pass
            worker.listener.timed_wait(channel.iox.Duration.from_secs_f64(POLL_S))

    def kill(self) -> None:
        """SIGKILLs the worker if it still runs and removes its domain's files."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.kill()
            worker.close()


class ProcessNode(RemoteNode):
    """Stands in for `wrapped` (a Node class) running in a worker process."""

    transport_class = ProcessTransport
    retains_input = False   # the frame is copied into shared memory before process() returns

    @property
    def worker(self) -> _Worker | None:
        """The live worker (its process, domain prefix and token), or None."""
        return self.transport.worker if self.transport is not None else None


make_executor_node = executor_factory(ProcessNode, "Process", where="a worker process")
