"""`executor: thread`: the node runs on a worker thread of its own, behind a bounded queue.

For inference that releases the GIL (CTranslate2, onnxruntime): the model computes on the
worker thread while the thread that pushes (the audio callback or the runner) goes on with the
next block. A node that computes in Python holds the GIL, and the pushing thread may then wait
up to `sys.getswitchinterval()` (5 ms) for it at a time: such a node belongs on `process`. Queue policy, failure policy, drop and error accounting and stats are RemoteNode's
(base.py), as for `process` and `ray`.

Zero-copy. A frame crosses by reference: the worker reads the very read-only view the engine
handed over, and its outputs come back as they were made. Nothing is serialized or copied (no
`io`, `engine` or serialization counts). The frame keeps its reader slot (copy-on-write, see
`NumpyData.writable`) until its request ends, so no other node writes into a buffer the worker
still reads, and the wrapped node writes in place only when the worker holds the sole reader.
All reader counts and counters are kept on the thread that pushes (answers are collected
there); the one exception is a copy-on-write copy the wrapped node makes on the worker, which
counts its `cow` there.

Answers. `process(frame)` queues the frame and returns the outputs of earlier frames that are
done (REMOTEMEDIA_THREAD_REPLY_WAIT_MS, default 0: it never waits for the frame it just sent,
so a slow node never holds up the block path); so a node's outputs leave one push or more later,
in order, with the pts the node gave them; `flush` and `end_of_stream` wait until the queue is
drained. The wrapped node's setup() and teardown() run on the worker thread too, so a model is
loaded and used on one thread. Its `context.clock()` reads the arrival time of the frame it is
processing, so runs in simulated time stay deterministic.

Failures. A node that raises: `RemoteNodeError` from the exception under `on_error: fail`, one
dropped frame under skip and restart. A worker thread that ends (the node raised SystemExit,
say) or stays silent for REMOTEMEDIA_THREAD_DEADLINE_MS (default 30 s, a long inference is not a
hang) counts as crashed; a hung thread cannot be killed, so it is abandoned (a daemon thread
whose answers are ignored) and, under skip and restart, a new thread with a new node instance
takes over.
"""

from __future__ import annotations

import threading
from collections import deque
from itertools import count

from ..engine.data import ControlData, NumpyData, RuntimeData
from ..engine.errors import ExecutorStartError, RemoteNodeError
from ..engine.node import NodeContext, as_outputs
from ..engine.errors import WorkerDied
from .base import RemoteNode, Reply, Transport, describe, executor_factory

_names = count(1)


class ThreadTransport(Transport):
    """One worker thread and the wrapped node instance it runs (see the module docstring)."""

    name = "thread"
    env = "THREAD"
    deadline_s = 30.0
    reply_wait_s = 0.0
    start_timeout_s = 60.0
    holds_frames = True
    ended_by = "abandoned (a thread cannot be killed)"

    def __init__(self, node: RemoteNode):
        super().__init__(node)
        self._cond = threading.Condition()
        self._pending: deque = deque()     # (rid, data, arrival_s) not yet started
        self._done: deque = deque()        # Reply objects not yet collected
        self._stopping = False
        self._killed = False
        self._ready = False
        self._start_error: BaseException | None = None
        self._teardown_error: Exception | None = None
        self._ended: str | None = None     # why the thread ended unasked
        self._now_s = 0.0                  # arrival time of the frame being processed
        # Barge-in: bumped by interrupt(); the worker stops a call begun under an older epoch
        # at its next output, and answers of an older epoch are not posted.
        self._epoch = 0
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"remotemedia-{node.node_id}-{next(_names)}")

    @property
    def runs_in(self) -> str:
        """Where the node runs, for messages: "worker thread NAME"."""
        return f"worker thread {self.thread.name}"

    # -- the pushing side ------------------------------------------------------------------------
    def start(self) -> None:
        """Starts the thread; it builds the wrapped node and runs its setup() there. Waits up
        to start_timeout_s; ExecutorStartError (from the node's exception) if setup fails."""
        node = self.node
        self.thread.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self._ended is not None,
                                       node.start_timeout_s):
                raise ExecutorStartError(f"{self.runs_in} for {node.spec.node_type} was not "
                                         f"ready within {node.start_timeout_s:g} s")
        if self._start_error is not None:
            raise ExecutorStartError(f"{node.spec.node_type} could not start on "
                                     f"{self.runs_in}: {describe(self._start_error)}"
                                     ) from self._start_error

    def send(self, request, data, counters) -> None:
        """Queues the data by reference with its arrival time on the run's clock (nothing
        counted: nothing is copied or serialized) and wakes the worker."""
        clock = self.node.context.clock if self.node.context is not None else None
        item = (request.rid, data, clock() if clock is not None else 0.0)
        with self._cond:
            self._pending.append(item)
            self._cond.notify_all()

    def receive(self, requests, counters):
        """The worker's finished answers, in order."""
        done = self._done
        while done:
            yield done.popleft()   # deque.popleft is atomic: the worker appends meanwhile

    def wait(self, timeout_s: float, requests) -> None:
        """Sleeps on the worker's condition until it answers or ends, at most timeout_s."""
        with self._cond:
            if not self._done and self._ended is None:
                self._cond.wait(timeout_s)

    def check(self) -> None:
        """WorkerDied when the thread ended unasked (its node raised SystemExit, say)."""
        if self._ended is not None:
            raise WorkerDied(f"{self.runs_in} ended: {self._ended}")

    def ready(self) -> bool:
        """Whether the worker has posted an answer not yet received."""
        return bool(self._done)

    def interrupt(self) -> tuple[int, int]:
        """Barge-in: the queued requests and the answers not yet received are dropped, and
        the call the worker is on stops at its next output (a generator such as Speak's is
        closed there). Returns the audio dropped: (blocks, samples)."""
        with self._cond:
            self._epoch += 1
            self._pending.clear()
            done, self._done = self._done, deque()
            self._cond.notify_all()
        return _audio_in(done)

    def abandon(self, request) -> bool:
        """Withdraws the request when the worker has not taken it from the queue yet."""
        with self._cond:
            for i, item in enumerate(self._pending):
                if item[0] == request.rid:
                    del self._pending[i]
                    return True
        return False

    def stop(self, timeout_s: float) -> None:
        """Ends the thread after the frame it is on (queued ones are dropped by the caller);
        the node's teardown() runs there. A thread still busy after timeout_s is left."""
        with self._cond:
            self._pending.clear()
            self._stopping = True
            self._cond.notify_all()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout_s)
        error = self._teardown_error
        if error is not None:
            self._teardown_error = None
            raise RemoteNodeError(f"teardown raised {describe(error)} (in {self.runs_in})"
                                  ) from error

    def kill(self) -> None:
        """Abandons the thread: what it still answers is ignored, and it ends after the call it
        is in (a thread cannot be stopped from outside)."""
        with self._cond:
            self._pending.clear()
            self._stopping = self._killed = True
            self._cond.notify_all()

    # -- the worker thread -----------------------------------------------------------------------
    def _run(self) -> None:
        spec, proxy = self.node.spec, self.node
        cond, pending = self._cond, self._pending
        context = proxy.context
        try:
            node = spec.node_class(spec.id, **spec.params)
            node.bind(NodeContext(spec.id, proxy.format,
                                  context.counters if context is not None else None,
                                  self._clock if context is not None and context.clock
                                  else None))
            node.setup()
        except BaseException as exc:   # the node's own failure: start() raises it
            self._start_error = exc
            with cond:
                self._ended = f"setup raised {describe(exc)}"
                cond.notify_all()
            return
        #: the wrapped node itself (its own counters and state, for tests and the TUI); set
        #: once its setup() has run, read on any thread
        self.instance = node
        with cond:
            self._ready = True
            cond.notify_all()
        try:
            while True:
                with cond:
                    while not pending and not self._stopping:
                        cond.wait()
                    if self._stopping:
                        break
                    rid, data, self._now_s = pending.popleft()
                    epoch = self._epoch
                try:
                    if type(data) is ControlData:
                        result = node.on_control(data)
                    else:
                        result = node.process(data)
                    if _streams(result):
                        # A generator (Speak's blocks, Respond's sentences) is handed back item
                        # by item as it makes them: the first sentence's audio leaves while
                        # the rest is synthesized, as it would inline.
                        for out in result:
                            if self._killed:
                                return
                            if self._epoch != epoch:
                                # interrupted (barge-in): this output and the rest are
                                # never made into answers
                                result.close()
                                break
                            self._post(Reply(rid, as_outputs(out), last=False), epoch)
                        reply = Reply(rid, [])
                    else:
                        reply = Reply(rid, as_outputs(result))
                except Exception as exc:   # the node's failure: the proxy applies on_error
                    reply = Reply(rid, [], describe(exc), exc)
                if not self._post(reply, epoch):
                    return
        except BaseException as exc:   # SystemExit, KeyboardInterrupt: the worker is gone
            with cond:
                self._ended = f"the node raised {describe(exc)}"
                cond.notify_all()
            return
        finally:
            try:
                node.teardown()
            except Exception as exc:   # stop() raises it on the thread that closes
                self._teardown_error = exc

    def _post(self, reply: Reply, epoch: int) -> bool:
        # An answer (or part of one) for the pushing thread; False once the worker is killed.
        # One made under an older epoch (before an interrupt) is dropped.
        with self._cond:
            if self._killed:
                return False
            if epoch != self._epoch:
                return True
            self._done.append(reply)
            self._cond.notify_all()
        ready = self.node.on_ready
        if ready is not None:
            ready()            # the run takes it now, not at its next block
        return True

    def _clock(self) -> float:
        return self._now_s


def _audio_in(replies) -> tuple[int, int]:
    """(blocks, samples per channel) of the audio frames in `replies`."""
    blocks = samples = 0
    for reply in replies:
        for out in reply.outputs:
            if type(out) is NumpyData:
                blocks += 1
                samples += out.array.shape[0] if out.array.ndim else 1
    return blocks, samples


def _streams(result) -> bool:
    """Whether a node's result is an iterator to be handed back item by item (a generator),
    rather than one output, None, or a list made whole."""
    return (result is not None and not isinstance(result, (RuntimeData, list, tuple))
            and hasattr(result, "__next__"))


class ThreadNode(RemoteNode):
    """Stands in for `wrapped` (a Node class) running on a worker thread."""

    transport_class = ThreadTransport
    # The frame is read on the worker after process() returns: its reader slot is given back
    # when its request ends (RemoteNode), not by the engine.
    retains_input = True

    @property
    def instance(self):
        """The wrapped node running on the worker (None before it started or after it
        stopped): its own attributes and counters, read from any thread."""
        transport = self.transport
        return getattr(transport, "instance", None) if transport is not None else None


make_executor_node = executor_factory(ThreadNode, "Thread", where=None)
