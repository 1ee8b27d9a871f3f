"""The worker process: runs one node on frames that arrive in shared memory.

Started by the engine as `python -m remotemedia.ipc.worker`, with its configuration as one JSON
object on stdin (node class path, id, params, stream format, domain prefix, service token, parent
pid, queue size, sys.path). It opens the services the parent created, builds and sets up the
node, and answers READY; a failure before that answers ERROR and exits 3.

Each request (a frame or a control event) is answered by its outputs, the last one flagged LAST,
or by one DONE or ERROR message. The node sees a read-only numpy view onto the request sample;
the sample goes back to the parent's pool when the last view of it is collected.

Waiting: after answering a request flagged SPIN (the engine busy-polls, see `channel.Spinner`) the
worker spins for SPIN_S (a frame that follows at once is picked up in microseconds), then sleeps on the request event listener, waking every 100 ms to check that its
parent still exists. A watchdog thread covers a node stuck in `process()`: once the parent is gone
it gives the main loop one second to exit cleanly, then ends the process.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time

SPIN_S = 0.0005
POLL_S = 0.1
WATCHDOG_S = 0.25
EXIT_CODE_SETUP = 3
EXIT_CODE_ORPHAN = 4


def _load_class(path: str, node_type: str):
    module_name, _, qualname = path.partition(":")
    if module_name and module_name != "__main__":
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    from ..engine.node import registry
    return registry.resolve(node_type)


def _watchdog(parent_pid: int, stopping: threading.Event) -> None:
    while not stopping.wait(WATCHDOG_S):
        if os.getppid() != parent_pid:
            if not stopping.wait(1.0):   # the main loop had its chance to exit cleanly
                os._exit(EXIT_CODE_ORPHAN)
            return


def main() -> int:
    """The worker's entry point (`python -m remotemedia.ipc.worker`): reads its JSON config from
    stdin, builds and sets up the node, answers READY and serves requests until STOP or the
    parent is gone. Returns the exit code: 0 after STOP, 3 (EXIT_CODE_SETUP) when the node
    cannot be built or set up (an ERROR message says why), 4 (EXIT_CODE_ORPHAN) when the
    parent died."""
    cfg = json.loads(sys.stdin.read())
    sys.stdin.close()
    for entry in reversed(cfg["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    parent_pid = cfg["parent_pid"]
    # Ctrl-C belongs to the engine, which stops this worker itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent_pid:
        return EXIT_CODE_ORPHAN

    from ..engine.counters import Counters
    from ..engine.node import AudioFormat, NodeContext, as_outputs
    from ..engine.serialization import SerializationWatch, start_watching
    from . import channel, codec, wire

    node = channel.make_node(cfg["prefix"])
    names = channel.service_names(cfg["token"], cfg["node_id"])
    queue = cfg["queue_size"]
    req = channel.pubsub(node, names["req"], buffer=queue + 2,
                         borrow=queue + channel.REQ_BORROW_SLACK, safe_overflow=True,
                         create=False)
    rep = channel.pubsub(node, names["rep"], buffer=channel.REP_BUFFER,
                         borrow=channel.REP_BORROW, safe_overflow=False, create=False)
    sub = req.subscriber_builder().buffer_size(queue + 2).create()
    pub = channel.publisher(rep, cfg["max_slice_len"], block=True)
    listener = channel.event(node, names["req_ev"], create=False).listener_builder().create()
    notifier = channel.event(node, names["rep_ev"], create=False).notifier_builder().create()
    channel.tighten_permissions(cfg["prefix"])

    counters = Counters()
    stopping = threading.Event()
    threading.Thread(target=_watchdog, args=(parent_pid, stopping), daemon=True,
                     name="remotemedia-ipc-watchdog").start()

    try:
        cls = _load_class(cfg["node_class"], cfg["node_type"])
        instance = cls(cfg["node_id"], **cfg["params"])
        instance.bind(NodeContext(cfg["node_id"], AudioFormat(**cfg["format"]), counters))
        instance.setup()
    except Exception as exc:
        wire.send_bytes(pub, codec.ERROR, 0, wire.error_payload(exc), flags=codec.LAST)
        notifier.notify()
        # Stay until the engine has read why (it then stops this process): a publisher that
        # goes away can take its unread samples with it.
        give_up = time.monotonic() + 10
        while time.monotonic() < give_up and os.getppid() == parent_pid:
            listener.timed_wait(channel.iox.Duration.from_secs_f64(POLL_S))
            got = wire.receive(sub, channel.Borrowed())
            if got is not None and got[0].kind == codec.STOP:
                break
        stopping.set()
        return EXIT_CODE_SETUP
    wire.send_bytes(pub, codec.READY, 0, str(os.getpid()).encode(), flags=codec.LAST)
    notifier.notify()

    watch = SerializationWatch()
    start_watching(watch)
    borrowed = channel.Borrowed()
    borrow_limit = queue + channel.REQ_BORROW_SLACK
    retains = cls.retains_input
    now = time.perf_counter
    spin_s = cfg.get("spin_s", SPIN_S)
    spin_until = 0.0   # when the current spin ends
    iox_timeout = channel.iox.Duration.from_secs_f64(POLL_S)

    def answer(request_id: int, outputs, cow0: int, ser0: int, extra_io: int) -> None:
        metas = [wire.encode_meta(o) for o in outputs]   # may count events: before the totals
        cow, ser = counters.cow - cow0, watch.events - ser0
        if not outputs:
            wire.send_bytes(pub, codec.DONE, request_id, flags=codec.LAST, cow=cow,
                            worker_io=extra_io, worker_ser=ser)
            return
        last = len(outputs) - 1
        for i, (out, meta) in enumerate(zip(outputs, metas)):
            if i == last:
                wire.send_data(pub, out, request_id, flags=codec.LAST, meta=meta, cow=cow,
                               worker_io=extra_io, worker_ser=ser)
            else:
                wire.send_data(pub, out, request_id, meta=meta)

    try:
        while True:
            # Near the borrow limit (a node that keeps its inputs), copy instead of viewing.
            copy_in = retains or borrowed.count() >= borrow_limit - 1
            got = wire.receive(sub, borrowed, copy_out=copy_in)
            if got is None:
                if now() < spin_until:
                    os.sched_yield()   # lets the engine run if it shares this core
                    continue
                listener.timed_wait(iox_timeout)
                if os.getppid() != parent_pid:
                    return EXIT_CODE_ORPHAN
                continue
            h, data, copied = got
            if h.kind == codec.STOP:
                return 0
            cow0, ser0 = counters.cow, watch.events
            try:
                if h.kind == codec.CONTROL:
                    result = instance.on_control(data)
                else:
                    result = instance.process(data)
                del data
                answer(h.request_id, as_outputs(result), cow0, ser0, int(copied))
                del result
            except Exception as exc:   # the node's error, or an output that cannot cross
                wire.send_bytes(pub, codec.ERROR, h.request_id, wire.error_payload(exc),
                                flags=codec.LAST)
            notifier.notify()
            # Spin for the next request only when the engine spins for answers (codec.SPIN).
            spin_until = now() + spin_s if h.flags & codec.SPIN else 0.0
    finally:
        stopping.set()
        try:
            instance.teardown()
        finally:
            # Ports before the node: iceoryx2 removes a service's files with its last port.
            del sub, pub, listener, notifier, req, rep, node


if __name__ == "__main__":
    sys.exit(main())
