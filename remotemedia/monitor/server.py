"""The monitor: watch and steer a running stream from outside its process.

    audio thread                     monitor thread (this module, one per run)
    ------------                     ---------------------------------------------------------
    runner.on_event(data) ─► post_event(): one deque append, or a counted drop when full
                                     every 1/hz s: drain events -> records, count by type, fold
                                     latency rings into histograms (for Prometheus), and if
                                     anyone listens: one stats snapshot, encoded once, queued
                                     to every client
                                     select(): accept, read commands, write what each client's
                                     bounded queue holds (non-blocking); what each client may
                                     cost per tick is bounded (monitor/clients.py)

The audio thread never waits for the monitor: `post_event` takes no lock (a deque append is
atomic under the GIL) and drops (counted: `events_dropped`) when MAX_EVENTS are waiting. A client
that reads slowly fills its own queue of CLIENT_QUEUE messages; the oldest then goes (counted:
`snapshots_dropped` / `client_events_dropped`), never slowing the run. Nor can a client that
writes faster than it is served: bytes read, commands served and replies waiting are bounded per
client and tick, and a client over a bound is throttled (counted: `throttled_budget`,
`throttled_unread`; clients.py says how). A malformed or unknown command gets an error reply; a
line over MAX_LINE bytes gets one and the client is closed. The hello and the final `end` are
never dropped.

Security: the socket is 0600 in a 0700 folder (protocol.runtime_dir), and a client whose peer
credentials (SO_PEERCRED) name another uid is refused even where the folder would let it in
(a --monitor PATH in a shared folder). Root can always connect, as with any file.
"""

from __future__ import annotations

import collections
import os
import select
import selectors
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Callable

from ..engine.errors import UsageError
from ..io.events import EventQueue
from . import protocol
from .clients import (ACCEPTS_PER_WAKE, CLIENT_QUEUE, COMMANDS_PER_TICK, LISTEN_BACKLOG,
                      MAX_CLIENTS, READ_CHUNK, REPLY_QUEUE, SALVAGE_BYTES, SALVAGE_COMMANDS,
                      TICK_COMMANDS, Client)
from .latency_histogram import E2E_BUCKETS_S, ENGINE_BUCKETS_S, LatencyHistogram, NodeHistograms
from .protocol import encode
from .snapshots import Snapshots

#: events waiting for the monitor thread before the audio thread starts dropping them
MAX_EVENTS = 4096
#: recent events kept for a client that attaches late (and the TUI's log)
BACKLOG = 200
#: the server side's kernel send buffer per client: small, so a stalled client is seen soon
SEND_BUFFER = 64 * 1024
#: how often the monitor looks for the end of a block before a tick (see _wait_for_gap)
GAP_POLL_S = 0.001

# A peer that closed or shut its writing side (POLLRDHUP is Linux's; POLLHUP elsewhere).
_HUNG_UP = getattr(select, "POLLRDHUP", 0) | select.POLLHUP


def _warm_up() -> None:
    import importlib

    import numpy as np
    importlib.import_module("..io.events", __package__)    # here, not on the first event
    np.percentile(np.zeros(4), (50, 95, 99))
    encode({"warm": [0.5, float("nan")]})


_peer_uid = protocol.peer_uid   # one reading of SO_PEERCRED for server and client


class Monitor(Snapshots):
    """Observe one StreamRunner from its own thread; optionally serve it on a unix socket.

    runner:       the StreamRunner (its session may not exist yet when the monitor starts)
    socket_path:  where to listen; None for no socket (Prometheus only)
    hz:           snapshots per second, at most protocol.MAX_HZ
    info:         what `hello` says about the run (manifest, path, input, output)

    Raises UsageError when the socket cannot be made (a live run already listens there, the
    folder is not private, the path is too long)."""

    def __init__(self, runner, *, socket_path: Path | str | None = None,
                 hz: float = protocol.MAX_HZ, info: dict | None = None,
                 max_events: int = MAX_EVENTS, client_queue: int = CLIENT_QUEUE):
        self.runner = runner
        self.hz = min(float(hz), protocol.MAX_HZ)
        self.info = dict(info or {})
        self.client_queue = client_queue
        self.socket_path = Path(socket_path) if socket_path is not None else None
        # -- filled by the audio thread ----------------------------------------------------------
        self._events = EventQueue(max_events)
        # -- the monitor thread's own ---------------------------------------------------------------
        self.events_by_type: collections.Counter = collections.Counter()
        self.backlog: collections.deque = collections.deque(maxlen=BACKLOG)
        self.engine_hist = LatencyHistogram(ENGINE_BUCKETS_S)
        self.e2e_hist = LatencyHistogram(E2E_BUCKETS_S)
        self.node_hists = NodeHistograms()       # per node, folded at a scrape
        self.snapshots_sent = 0
        self.snapshots_dropped = 0
        self.client_events_dropped = 0
        self.clients_total = 0
        self.clients_refused = 0
        self.clients_over_limit = 0  # attaches refused because MAX_CLIENTS were attached
        self.throttled_budget = 0    # a client sent more commands than a tick serves
        self.throttled_unread = 0    # a client did not read the replies it asked for
        self.commands_unserved = 0   # lines a departed client left beyond SALVAGE_COMMANDS
        self.commands = 0
        self.bad_commands = 0
        self.ticks = 0
        self.internal_errors = 0     # exceptions the monitor thread survived (see _serve)
        self.busy_s = 0.0            # time the monitor thread spent working (holding the GIL)
        self.busy_max_s = 0.0        # the longest of those stretches: one wake-up or one tick
        self._clients: dict[int, Client] = {}
        self._tick_commands = TICK_COMMANDS   # commands all clients may still have served
        self._hello_line: bytes | None = None
        self._snapshot_line: bytes | None = None   # this tick's snapshot, for `snapshot`
        self._handlers: dict[str, Callable[[dict], dict]] = {}
        self._seq = 0
        self._session = None
        self._health_seen: dict = {}      # counts already announced as events
        self._full_stats: dict | None = None
        self._full_session = None
        self._final: dict | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()      # guards the histograms between fold and scrape
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        if self.socket_path is not None:
            self._listen(self.socket_path)

    # -- the audio thread's side ----------------------------------------------------------------------
    def post_event(self, data) -> None:
        """Hand one non-audio output to the monitor. Called on the audio thread: no lock, no
        formatting; when MAX_EVENTS are already waiting the event is dropped and counted."""
        self._events.post(data)

    # what the audio thread's event queue counts
    max_events = property(lambda self: self._events.capacity)
    events_posted = property(lambda self: self._events.posted)
    events_dropped = property(lambda self: self._events.dropped)

    def tee(self, other: Callable | None) -> Callable:
        """An on_event callback feeding the monitor and then `other` (the CLI's writer)."""
        post = self.post_event
        if other is None:
            return post

        def both(data) -> None:
            post(data)
            other(data)
        return both

    # -- commands ----------------------------------------------------------------------------------
    def register_command(self, name: str, handler: Callable[[dict], dict]) -> None:
        """Serve `name` (one of protocol.COMMANDS, e.g. "record") with handler(args) -> reply
        fields; a handler raising ValueError or RemoteMediaError answers with an error."""
        self._handlers[name] = handler

    def _run_command(self, name: str, args: dict) -> dict:
        runner = self.runner
        session = runner.session
        if name in self._handlers:
            return self._handlers[name](args)
        if name == "ping":
            return {}
        if name == "stop":
            runner.stop("stopped")
            return {}
        if session is None:
            raise ValueError("the run has not started yet")
        if name == "reset":
            session.reset_stats()
            self._health_seen.clear()
            return {}
        if name == "bypass":
            on = args["on"]
            session.bypass = (not session.bypass) if on is None else on
            return {"bypass": session.bypass}
        if name == "record":
            raise ValueError("unsupported: this build of remotemedia cannot record")
        raise ValueError(f"unknown command {name!r}")

    # -- lifecycle -------------------------------------------------------------------------------
    _made: tuple[int, int] | None = None     # (st_dev, st_ino) of the socket file this run made

    def _listen(self, path: Path) -> None:
        path_bytes = os.fsencode(path)
        if len(path_bytes) >= 104:
            raise UsageError(f"monitor socket path is too long for a unix socket "
                             f"({len(path_bytes)} bytes, at most 103): {path}")
        if not path.parent.is_dir():
            raise UsageError(f"monitor socket folder {path.parent} does not exist")
        _check_folder(path)
        if os.path.lexists(path):
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                mode = 0
            if not stat.S_ISSOCK(mode):
                raise UsageError(f"--monitor {path} exists and is not a socket; not replacing it")
            if protocol.socket_listening(path):
                raise UsageError(f"--monitor {path}: another run is listening there")
            path.unlink()           # a stale socket from a run that died
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)    # the socket is born 0600: no window where others may connect
        try:
            listener.bind(os.fspath(path))
        except OSError as exc:
            listener.close()
            raise UsageError(f"cannot make the monitor socket {path}: {exc.strerror}") from None
        finally:
            os.umask(previous)
        os.chmod(path, 0o600)
        made = os.lstat(path)
        self._made = (made.st_dev, made.st_ino)
        listener.listen(LISTEN_BACKLOG)
        listener.setblocking(False)
        self._listener = listener

    def start(self) -> "Monitor":
        """Start the monitor thread (socket served from then on). Call it before the audio
        starts: it first pays, on the calling thread, the one-time costs of what the monitor
        thread does later (numpy's first percentile took 20-60 ms holding the interpreter, an
        import on the first event), so that they never fall inside a live run."""
        _warm_up()
        self._thread = threading.Thread(target=self._serve, name="remotemedia-monitor",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self, final_stats: dict | None = None, timeout: float = 1.0) -> None:
        """Send every client the last events and an `end` message with the final report, then
        close the sockets and remove the socket file. Safe to call twice."""
        if self._done.is_set():
            return
        self._final = final_stats
        self._done.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
        self._cleanup()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _cleanup(self) -> None:
        for client in list(self._clients.values()):
            self._drop_client(client)
        if self._listener is not None:
            try:
                self._selector.unregister(self._listener)
            except (KeyError, ValueError):
                pass
            self._listener.close()
            self._listener = None
            if self.socket_path is not None:
                try:
                    st = os.lstat(self.socket_path)
                    if (st.st_dev, st.st_ino) == self._made:   # ours, not a replacement
                        self.socket_path.unlink()
                except FileNotFoundError:
                    pass
        for s in (self._wake_r, self._wake_w):
            s.close()
        self._selector.close()

    # -- the monitor thread -----------------------------------------------------------------------------
    def _serve(self) -> None:
        sel = self._selector
        if self._listener is not None:
            sel.register(self._listener, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        period = 1.0 / self.hz
        next_tick = time.monotonic()
        while not self._done.is_set():
            try:
                timeout = max(0.0, next_tick - time.monotonic())
                for key, mask in sel.select(timeout):
                    t0 = time.perf_counter()
                    self._ready(key, mask)
                    self._busy(time.perf_counter() - t0)
                now = time.monotonic()
                if now >= next_tick:
                    self._wait_for_gap()
                    t0 = time.perf_counter()
                    self.tick()
                    self._busy(time.perf_counter() - t0)
                    next_tick += period
                    if next_tick < now:    # fell behind (a stall): do not burst to catch up
                        next_tick = now + period
            except Exception:
                # Whatever went wrong (out of file descriptors, a report read mid-teardown),
                # the monitor keeps serving and the run never hears of it; counted, and the
                # next tick comes a period later.
                self.internal_errors += 1
                next_tick = time.monotonic() + period
        self._finish()

    def _busy(self, seconds: float) -> None:
        self.busy_s += seconds
        if seconds > self.busy_max_s:
            self.busy_max_s = seconds

    def _wait_for_gap(self) -> None:
        """Start a tick just after a block has left the engine, so the snapshot's work (about a
        millisecond holding the GIL when the percentiles are due) falls in the gap before the
        next block rather than inside one. Without this a 20 Hz tick and 50 Hz blocks keep a
        fixed phase for the whole run: in some runs every fifth block would wait for the GIL,
        and the engine's p99 showed it (benchmarks/bench_monitor.py). Polls the engine's block
        count every GAP_POLL_S for at most two blocks' time; no signal from the audio thread."""
        runner = self.runner
        session = runner.session
        if session is None or runner.state != "running" or not runner.realtime:
            return
        ring = session.engine_latency
        seen = ring.count
        deadline = time.monotonic() + 2 * runner.period_s
        while ring.count == seen and not self._done.is_set():
            if time.monotonic() >= deadline:
                return
            time.sleep(GAP_POLL_S)

    def _ready(self, key, mask) -> None:
        what = key.data
        if what == "listen":
            self._accept()
        elif what == "wake":
            try:
                self._wake_r.recv(4096)
            except OSError:
                pass
        else:
            client = what
            if mask & selectors.EVENT_READ:
                self._read(client)
            if mask & selectors.EVENT_WRITE and not client.closing \
                    and client.sock.fileno() in self._clients:
                self._flush(client)

    def _accept(self) -> None:
        """Take up to ACCEPTS_PER_WAKE waiting connections (the rest stay in the listen
        backlog until the next wake-up); each gets its hello and the event backlog at once."""
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            self._admit(sock)

    def _refuse(self, sock: socket.socket, why: str) -> None:
        try:
            sock.setblocking(False)
            sock.send(encode({"type": "error", "cmd": None, "id": None, "error": why}))
        except OSError:
            pass
        sock.close()

    def _admit(self, sock: socket.socket) -> None:
        uid = _peer_uid(sock)
        if uid is not None and uid != os.getuid() and uid != 0:
            self.clients_refused += 1
            self._refuse(sock, "refused: this run belongs to another user")
            return
        if len(self._clients) >= MAX_CLIENTS:
            self._reap_hung_up()
        if len(self._clients) >= MAX_CLIENTS:
            self.clients_over_limit += 1
            self._refuse(sock, f"refused: {MAX_CLIENTS} clients are attached already")
            return
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass
        client = Client(sock, uid)
        self._clients[sock.fileno()] = client
        self.clients_total += 1
        if self._hello_line is None:
            self._hello_line = encode(self._hello())
        # The first bytes it gets, whatever follows: the hello, then the recent events.
        client.pending = self._hello_line + b"".join(self.backlog)
        self._flush(client)

    def _reap_hung_up(self) -> None:
        """Drop the clients whose peers have closed but whose EOF select() has not yet served:
        a client that hung up is not attached, so it must not take a place of MAX_CLIENTS.
        What each sent last (`stop`, then close) is carried out first, as on any departure."""
        poller = select.poll()
        for fd in self._clients:
            poller.register(fd, _HUNG_UP)
        for fd, _ in poller.poll(0):
            client = self._clients.get(fd)
            if client is not None:
                self._salvage(client)
                self._drop_client(client)

    def _read(self, client: Client) -> None:
        """One recv of at most READ_CHUNK bytes, then serve what the budgets allow. Not called
        while a complete command waits unserved (the client is not watched for reading)."""
        try:
            data = client.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_client(client)
            return
        client.inbuf += data
        client.has_line = b"\n" in client.inbuf
        self._serve_commands(client)
        if client.sock.fileno() in self._clients:
            self._flush(client)

    def _serve_commands(self, client: Client) -> None:
        """Run the client's waiting commands while its budgets last (module clients.py)."""
        while client.has_line and not client.closing:
            if client.replies >= REPLY_QUEUE and (not self._send(client)
                                                  or client.replies >= REPLY_QUEUE):
                if client.sock.fileno() in self._clients:
                    self._throttle(client, "unread")
                return
            if client.budget <= 0 or self._tick_commands <= 0:
                self._throttle(client, "budget")
                return
            client.throttled = None
            client.budget -= 1
            self._tick_commands -= 1
            line = client.next_line()
            if line.strip():
                self._command(client, line)
        if not client.has_line and len(client.inbuf) > protocol.MAX_LINE:
            self.bad_commands += 1
            self._queue(client, "reply", encode({
                "type": "error", "cmd": None, "id": None,
                "error": f"line longer than {protocol.MAX_LINE} bytes; closing"}))
            client.closing = True
            self._flush(client)
            # Unread input would make close() reset the connection and lose the reply.
            for _ in range(SALVAGE_BYTES // READ_CHUNK):
                try:
                    if not client.sock.recv(READ_CHUNK):
                        break
                except OSError:
                    break
            self._drop_client(client)

    def _throttle(self, client: Client, why: str) -> None:
        if client.throttled != why:       # counted once per spell, not per wake-up
            client.throttled = why
            if why == "unread":
                self.throttled_unread += 1
            else:
                self.throttled_budget += 1

    def _command(self, client: Client, line: bytes) -> None:
        self.commands += 1
        cmd = ident = None
        try:
            message = protocol.decode(line)
            ident = message.get("id")
            if not isinstance(ident, (str, int, type(None))) or isinstance(ident, bool):
                ident = None
            cmd = message.get("cmd") if isinstance(message.get("cmd"), str) else None
            name, args = protocol.parse_command(message)
            if name == "snapshot":
                # The last tick's snapshot, encoded once for every request of the tick.
                head = encode({"type": "reply", "cmd": name, "id": ident, "ok": True})
                self._queue(client, "reply", head[:-2] + b', "snapshot": '
                            + self._current_snapshot() + b"}\n")
                return
            reply = self._run_command(name, args)
        except Exception as exc:   # the reply says what; the run goes on
            self.bad_commands += 1
            text = str(exc) or type(exc).__name__
            self._queue(client, "reply", encode({"type": "error", "cmd": cmd, "id": ident,
                                                 "error": text}))
            return
        self._queue(client, "reply", encode({"type": "reply", "cmd": name, "id": ident,
                                             "ok": True, **reply}))

    def _current_snapshot(self) -> bytes:
        """This tick's snapshot as JSON (no newline), made now if no tick has made one since
        the first client came."""
        if self._snapshot_line is None:
            self._snapshot_line = encode(self._snapshot())[:-1]
        return self._snapshot_line

    def _queue(self, client: Client, kind: str, payload: bytes) -> None:
        dropped = client.enqueue(kind, payload, self.client_queue)
        # The oldest snapshot or event went: a slow client sees the newest state when it
        # catches up.
        if dropped == "snapshot":
            client.snapshots_dropped += 1
            self.snapshots_dropped += 1
        elif dropped == "event":
            client.events_dropped += 1
            self.client_events_dropped += 1

    def _flush(self, client: Client) -> None:
        """Write what the client's queue holds without blocking; wait for EVENT_WRITE if the
        kernel's buffer is full."""
        if not self._send(client):
            return
        if client.has_line and client.replies < REPLY_QUEUE and client.throttled == "unread":
            client.throttled = None      # it read its replies: serve it again (budget allowing)
        self._watch(client)

    def _send(self, client: Client) -> bool:
        """Hand the kernel what it takes of the queue; False when the client has gone."""
        sock = client.sock
        while True:
            if not client.pending:
                if not client.queue:
                    break
                client.pending, snapshots = client.take(65536)
                self.snapshots_sent += snapshots
            try:
                sent = sock.send(client.pending)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # The client has gone. What it sent last (`stop` and then close, from a TUI
                # that quits) may still wait in our receive queue: carry it out first.
                self._salvage(client)
                self._drop_client(client)
                return False
            client.pending = client.pending[sent:]
        return True

    def _watch(self, client: Client) -> None:
        """Select on what the client needs: reading unless a command waits unserved (then its
        further bytes stay in the kernel), writing while bytes wait to go out."""
        want = (0 if client.has_line or client.closing else selectors.EVENT_READ) \
            | (selectors.EVENT_WRITE if client.pending else 0)
        if want == client.events:
            return
        try:
            if client.events == 0:
                self._selector.register(client.sock, want, client)
            elif want == 0:
                self._selector.unregister(client.sock)
            else:
                self._selector.modify(client.sock, want, client)
            client.events = want
        except (KeyError, ValueError, OSError):
            pass

    def _salvage(self, client: Client) -> None:
        """Run the last complete command lines a departed client left unread (no replies:
        there is no one to read them); at most SALVAGE_BYTES read and SALVAGE_COMMANDS run,
        the rest counted in `commands_unserved`."""
        buf = client.inbuf
        while len(buf) < SALVAGE_BYTES:
            try:
                data = client.sock.recv(READ_CHUNK * 4)
            except OSError:
                break
            if not data:
                break
            buf += data
        client.closing = True
        lines = [line for line in buf.split(b"\n")[:-1] if line.strip()]
        self.commands_unserved += max(0, len(lines) - SALVAGE_COMMANDS)
        for line in lines[-SALVAGE_COMMANDS:]:
            self._command(client, line)
        client.inbuf = b""
        client.has_line = False

    def _drop_client(self, client: Client) -> None:
        self._clients.pop(client.sock.fileno(), None)
        if client.events:
            try:
                self._selector.unregister(client.sock)
            except (KeyError, ValueError):
                pass
            client.events = 0
        client.sock.close()

    # -- each tick --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Drain events, fold latencies, and send a snapshot to every client."""
        self.ticks += 1
        records = self._drain_events()
        session = self.runner.session
        if session is not None:
            if session is not self._session:
                self._session = session
            with self._lock:
                self.engine_hist.fold(session.engine_latency)
                self.e2e_hist.fold(session.end_to_end_latency)
        if not self._clients:
            self._snapshot_line = None
            return
        snapshot_message = self._snapshot()
        records += self._health_events(snapshot_message)
        clients = list(self._clients.values())
        if len(records) > self.client_queue:
            # More than any client's queue holds: only the newest are queued, the rest counted
            # as dropped at once (a chatty graph times many clients stays a bounded tick).
            lost = len(records) - self.client_queue
            records = records[-self.client_queue:]
            for client in clients:
                client.events_dropped += lost
            self.client_events_dropped += lost * len(clients)
        for record in records:
            for client in clients:
                self._queue(client, "event", record)
        snapshot = encode(snapshot_message)
        self._snapshot_line = snapshot[:-1]
        # A new tick's budgets; the clients whose commands wait are served first, starting
        # with a different one each tick so that none can take every tick's budget.
        self._tick_commands = TICK_COMMANDS
        start = self.ticks % len(clients)
        for client in clients[start:] + clients[:start]:
            client.budget = COMMANDS_PER_TICK
            if client.has_line:
                self._serve_commands(client)
        for client in clients:
            if client.sock.fileno() in self._clients:
                self._queue(client, "snapshot", snapshot)
                self._flush(client)

    def counts(self) -> dict[str, int | float]:
        """The monitor's own counters (also in every snapshot and the final report).
        `busy_s`: seconds the monitor thread spent working (building, encoding and sending
        snapshots, reading commands), `busy_max_s` the longest single stretch of it (what the
        audio thread may have waited for the interpreter at worst); `engine_s`: the engine's own time over the blocks folded
        so far (the sum of its per-block latencies), to set the first against."""
        return {"clients": len(self._clients), "clients_total": self.clients_total,
                "clients_refused": self.clients_refused,
                "events_posted": self.events_posted, "events_dropped": self.events_dropped,
                "snapshots_sent": self.snapshots_sent,
                "snapshots_dropped": self.snapshots_dropped,
                "client_events_dropped": self.client_events_dropped,
                "clients_over_limit": self.clients_over_limit,
                "throttled_budget": self.throttled_budget,
                "throttled_unread": self.throttled_unread,
                "commands_unserved": self.commands_unserved,
                "commands": self.commands, "bad_commands": self.bad_commands,
                "ticks": self.ticks, "internal_errors": self.internal_errors,
                "busy_s": round(self.busy_s, 6), "busy_max_s": round(self.busy_max_s, 6),
                "engine_s": round(self.engine_hist.sum_s, 6)}

    def _finish(self) -> None:
        """The run is over: last events, the final snapshot and report, flushed for a moment."""
        try:
            self.tick()
            end = encode({"type": "end", "state": self.runner.state,
                          "reason": self.runner.stop_reason, "stats": self._final})
            for client in list(self._clients.values()):
                self._queue(client, "end", end)
                self._flush(client)
            deadline = time.monotonic() + 1.0
            while any(c.pending or c.queue for c in self._clients.values()) \
                    and time.monotonic() < deadline:
                for key, mask in self._selector.select(0.05):
                    if isinstance(key.data, Client) and mask & selectors.EVENT_WRITE \
                            and key.data.sock.fileno() in self._clients:
                        self._flush(key.data)
        except Exception:
            pass


def _check_folder(path: Path) -> None:
    """Refuse (UsageError) a socket folder another user controls: one that belongs to another
    user (not root), or that group or others can write without the sticky bit (/tmp's), where
    they could replace the socket or make the run's unlink at exit remove something else."""
    folder = path.parent
    st = os.stat(folder)
    uid = os.geteuid()
    if st.st_uid not in (uid, 0):
        raise UsageError(f"--monitor {path}: the folder {folder} belongs to uid {st.st_uid}, "
                         f"not to this user ({uid}): refusing to serve a socket there")
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise UsageError(f"--monitor {path}: the folder {folder} can be written by group or "
                         f"others without the sticky bit (mode {stat.S_IMODE(st.st_mode):o}): "
                         f"refusing to serve a socket there")
