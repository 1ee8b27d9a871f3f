"""The monitor: watch and steer a running stream from outside its process.

    audio thread                     monitor thread (this module, one per run)
    ------------                     ---------------------------------------------------------
    runner.on_event(data) ─► post_event(): one deque append, or a counted drop when full
                                     every 1/hz s: drain events -> records, count by type, fold
                                     latency rings into histograms (for Prometheus), and if
                                     anyone listens: one stats snapshot, encoded once, queued
                                     to every client
                                     select(): accept, read commands, write what each client's
                                     bounded queue holds (non-blocking)

The audio thread never waits for the monitor: `post_event` takes no lock (a deque append is
atomic under the GIL) and drops (counted: `events_dropped`) when MAX_EVENTS are waiting. A client
that reads slowly fills its own queue of CLIENT_QUEUE messages; the oldest then goes (counted:
`snapshots_dropped` / `client_events_dropped`), never slowing the run. A malformed or unknown
command gets an error reply; a line over MAX_LINE bytes gets one and the client is closed.

Security: the socket is 0600 in a 0700 folder (protocol.runtime_dir), and a client whose peer
credentials (SO_PEERCRED) name another uid is refused even where the folder would let it in
(a --monitor PATH in a shared folder). Root can always connect, as with any file.
"""

from __future__ import annotations

import collections
import os
import selectors
import socket
import stat
import struct
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..engine.errors import UsageError
from ..engine.levels import SILENCE_DBFS
from ..runner import describe_reason
from . import protocol
from .histogram import E2E_BUCKETS_S, ENGINE_BUCKETS_S, LatencyHistogram
from .protocol import encode

#: events waiting for the monitor thread before the audio thread starts dropping them
MAX_EVENTS = 4096
#: messages waiting for one client before its oldest is dropped
CLIENT_QUEUE = 32
#: recent events kept for a client that attaches late (and the TUI's log)
BACKLOG = 200
#: the server side's kernel send buffer per client: small, so a stalled client is seen soon
SEND_BUFFER = 64 * 1024
#: how many recent engine latencies a snapshot carries (the TUI's sparkline)
SPARK_FRAMES = 150
#: how often the monitor looks for the end of a block before a tick (see _wait_for_gap)
GAP_POLL_S = 0.001
#: every how many snapshots the latency percentiles are recomputed (the counters: every one);
#: at 20 Hz the percentiles refresh 5 times a second, as often as the eye can follow them
STATS_EVERY = 4

class _Client:
    __slots__ = ("sock", "queue", "pending", "inbuf", "snapshots_dropped", "events_dropped",
                 "closing", "uid")

    def __init__(self, sock: socket.socket, uid: int | None):
        self.sock = sock
        self.queue: collections.deque = collections.deque()   # (kind, bytes)
        self.pending = b""
        self.inbuf = b""
        self.snapshots_dropped = 0
        self.events_dropped = 0
        self.closing = False
        self.uid = uid


def _peer_uid(sock: socket.socket) -> int | None:
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class Monitor:
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
        self.max_events = max_events
        self.client_queue = client_queue
        self.socket_path = Path(socket_path) if socket_path is not None else None
        # -- filled by the audio thread ----------------------------------------------------------
        self._events: collections.deque = collections.deque()
        self.events_posted = 0
        self.events_dropped = 0
        # -- the monitor thread's own ---------------------------------------------------------------
        self.events_by_type: collections.Counter = collections.Counter()
        self.backlog: collections.deque = collections.deque(maxlen=BACKLOG)
        self.engine_hist = LatencyHistogram(ENGINE_BUCKETS_S)
        self.e2e_hist = LatencyHistogram(E2E_BUCKETS_S)
        self.snapshots_sent = 0
        self.snapshots_dropped = 0
        self.client_events_dropped = 0
        self.clients_total = 0
        self.clients_refused = 0
        self.commands = 0
        self.bad_commands = 0
        self.ticks = 0
        self.internal_errors = 0     # exceptions the monitor thread survived (see _serve)
        self.busy_s = 0.0            # time the monitor thread spent working (holding the GIL)
        self._clients: dict[int, _Client] = {}
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
        events = self._events
        if len(events) >= self.max_events:
            self.events_dropped += 1
            return
        events.append((time.time(), data))
        self.events_posted += 1

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
        if name == "snapshot":
            return {"snapshot": self._snapshot()}
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
    def _listen(self, path: Path) -> None:
        path_bytes = os.fsencode(path)
        if len(path_bytes) >= 104:
            raise UsageError(f"monitor socket path is too long for a unix socket "
                             f"({len(path_bytes)} bytes, at most 103): {path}")
        if not path.parent.is_dir():
            raise UsageError(f"monitor socket folder {path.parent} does not exist")
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
        listener.listen(16)
        listener.setblocking(False)
        self._listener = listener

    def start(self) -> "Monitor":
        """Start the monitor thread (socket served from then on)."""
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
                    self.busy_s += time.perf_counter() - t0
                now = time.monotonic()
                if now >= next_tick:
                    self._wait_for_gap()
                    t0 = time.perf_counter()
                    self.tick()
                    self.busy_s += time.perf_counter() - t0
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
            if mask & selectors.EVENT_WRITE and not client.closing:
                self._flush(client)

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        uid = _peer_uid(sock)
        if uid is not None and uid != os.getuid() and uid != 0:
            self.clients_refused += 1
            try:
                sock.sendall(encode({"type": "error", "cmd": None, "id": None,
                                     "error": "refused: this run belongs to another user"}))
            except OSError:
                pass
            sock.close()
            return
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass
        client = _Client(sock, uid)
        self._clients[sock.fileno()] = client
        self.clients_total += 1
        self._selector.register(sock, selectors.EVENT_READ, client)
        self._queue(client, "reply", encode(self._hello()))
        for record in self.backlog:
            self._queue(client, "event", record)
        self._flush(client)

    def _hello(self) -> dict:
        pipeline = self.runner.pipeline
        audio = pipeline.manifest.audio
        return {"type": "hello", "protocol": protocol.PROTOCOL, "pid": os.getpid(),
                "manifest": pipeline.manifest.name, "hz": self.hz,
                "audio": {"sample_rate": audio.sample_rate, "block_size": audio.block_size,
                          "channels": audio.channels},
                "nodes": [[node_id, pipeline.manifest.node(node_id).node_type]
                          for node_id in pipeline.order],
                "edges": [list(e) for e in pipeline.edges()],
                "commands": list(protocol.COMMANDS),
                **self.info}

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_client(client)
            return
        buf = client.inbuf + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            if line.strip():
                self._command(client, line)
        if len(buf) > protocol.MAX_LINE:
            self.bad_commands += 1
            self._queue(client, "reply", encode({
                "type": "error", "cmd": None, "id": None,
                "error": f"line longer than {protocol.MAX_LINE} bytes; closing"}))
            client.closing = True
            self._flush(client)
            self._drop_client(client)
            return
        client.inbuf = buf
        self._flush(client)

    def _command(self, client: _Client, line: bytes) -> None:
        self.commands += 1
        cmd = ident = None
        try:
            message = protocol.decode(line)
            ident = message.get("id")
            if not isinstance(ident, (str, int, type(None))) or isinstance(ident, bool):
                ident = None
            cmd = message.get("cmd") if isinstance(message.get("cmd"), str) else None
            name, args = protocol.parse_command(message)
            reply = self._run_command(name, args)
        except Exception as exc:   # the reply says what; the run goes on
            self.bad_commands += 1
            text = str(exc) or type(exc).__name__
            self._queue(client, "reply", encode({"type": "error", "cmd": cmd, "id": ident,
                                                 "error": text}))
            return
        self._queue(client, "reply", encode({"type": "reply", "cmd": name, "id": ident,
                                             "ok": True, **reply}))

    def _queue(self, client: _Client, kind: str, payload: bytes) -> None:
        queue = client.queue
        if len(queue) >= self.client_queue:
            # The oldest message goes: a slow client sees the newest state when it catches up.
            old_kind, _ = queue.popleft()
            if old_kind == "snapshot":
                client.snapshots_dropped += 1
                self.snapshots_dropped += 1
            elif old_kind == "event":
                client.events_dropped += 1
                self.client_events_dropped += 1
        queue.append((kind, payload))

    def _flush(self, client: _Client) -> None:
        """Write what the client's queue holds without blocking; wait for EVENT_WRITE if the
        kernel's buffer is full."""
        sock = client.sock
        while True:
            if not client.pending:
                if not client.queue:
                    break
                parts = []
                size = 0
                while client.queue and size < 65536:
                    kind, payload = client.queue.popleft()
                    if kind == "snapshot":
                        self.snapshots_sent += 1
                    parts.append(payload)
                    size += len(payload)
                client.pending = b"".join(parts)
            try:
                sent = sock.send(client.pending)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # The client has gone. What it sent last (`stop` and then close, from a TUI
                # that quits) may still wait in our receive queue: carry it out first.
                self._salvage(client)
                self._drop_client(client)
                return
            client.pending = client.pending[sent:]
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.pending else 0)
        try:
            if self._selector.get_key(sock).events != want:
                self._selector.modify(sock, want, client)
        except (KeyError, ValueError):
            pass

    def _salvage(self, client: _Client) -> None:
        """Run the complete command lines a departed client left unread (no replies: there
        is no one to read them)."""
        buf = client.inbuf
        while True:
            try:
                data = client.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
        client.closing = True
        for line in buf.split(b"\n")[:-1]:
            if line.strip():
                self._command(client, line)
        client.inbuf = b""

    def _drop_client(self, client: _Client) -> None:
        self._clients.pop(client.sock.fileno(), None)
        try:
            self._selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
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
            return
        snapshot_message = self._snapshot()
        records += self._health_events(snapshot_message)
        for record in records:
            for client in list(self._clients.values()):
                self._queue(client, "event", record)
        snapshot = encode(snapshot_message)
        for client in list(self._clients.values()):
            self._queue(client, "snapshot", snapshot)
            self._flush(client)

    def _drain_events(self) -> list[bytes]:
        from ..io.events import event_record
        events = self._events
        out = []
        while events:
            t, data = events.popleft()
            try:
                record = event_record(data)
            except Exception:          # an event we cannot describe is still counted
                record = {"type": getattr(data, "kind", "unknown")}
            kind = str(record.get("type", "event")) if isinstance(record, dict) else "event"
            self.events_by_type[kind] += 1
            node = record.get("node") if isinstance(record, dict) else None
            line = encode({"type": "event", "t": t, "node": node, "event": kind,
                           "record": record})
            self.backlog.append(line)
            out.append(line)
        return out

    def _health_events(self, snapshot: dict) -> list[bytes]:
        """Events the graph does not emit but a watcher wants in the log: node errors (a node
        with on_error: skip only counts them), drops and xruns, each when its count grows
        (type `node_error`, `drops`, `xrun`), and the run's failure (type `error`)."""
        stats = snapshot.get("stats")
        if not stats:
            return []
        now = time.time()
        found: list[dict] = []
        seen = self._health_seen
        for node_id, node in (stats.get("nodes") or {}).items():
            errors = node.get("errors", 0)
            if errors > seen.get(("node", node_id), 0):
                found.append({"type": "node_error", "node": node_id, "errors": errors,
                              "new": errors - seen.get(("node", node_id), 0)})
            seen[("node", node_id)] = errors
        for key, kind, value in (("drops", "drops", stats.get("drops", 0)),
                                 *(((f"xrun:{k}", "xrun", v)
                                    for k, v in (stats.get("xruns") or {}).items()))):
            if value > seen.get(key, 0):
                found.append({"type": kind, "node": None, "what": key.split(":")[-1],
                              "count": value, "new": value - seen.get(key, 0)})
            seen[key] = value
        if snapshot.get("state") == "failed" and not seen.get("failed"):
            seen["failed"] = 1
            found.append({"type": "error", "node": getattr(self.runner.error, "node_id", None),
                          "message": snapshot.get("reason")})
        lines = []
        for record in found:      # not in events_by_type: that counts the graph's own events
            line = encode({"type": "event", "t": now, "node": record.get("node"),
                           "event": record["type"], "record": record})
            self.backlog.append(line)
            lines.append(line)
        return lines

    def counts(self) -> dict[str, int | float]:
        """The monitor's own counters (also in every snapshot and the final report).
        `busy_s`: seconds the monitor thread spent working (building, encoding and sending
        snapshots, reading commands); `engine_s`: the engine's own time over the blocks folded
        so far (the sum of its per-block latencies), to set the first against."""
        return {"clients": len(self._clients), "clients_total": self.clients_total,
                "clients_refused": self.clients_refused,
                "events_posted": self.events_posted, "events_dropped": self.events_dropped,
                "snapshots_sent": self.snapshots_sent,
                "snapshots_dropped": self.snapshots_dropped,
                "client_events_dropped": self.client_events_dropped,
                "commands": self.commands, "bad_commands": self.bad_commands,
                "ticks": self.ticks, "internal_errors": self.internal_errors,
                "busy_s": round(self.busy_s, 6),
                "engine_s": round(self.engine_hist.sum_s, 6)}

    def _snapshot(self) -> dict[str, Any]:
        runner = self.runner
        session = runner.session
        stats = engine_us = e2e_us = None
        if session is not None:
            stats = self._stats(session)
            engine_us = _sparkline(session.engine_latency)
            if stats.get("latency_us", {}).get("end_to_end") is not None:
                e2e_us = _sparkline(session.end_to_end_latency)
        levels = runner.levels
        levels_dict = {name: getattr(levels, name) for name in levels.__dataclass_fields__}
        levels.input_peak_max_dbfs = levels.output_peak_max_dbfs = SILENCE_DBFS
        self._seq += 1
        return {"type": "snapshot", "seq": self._seq, "t": time.time(),
                "state": runner.state, "reason": describe_reason(runner),
                "stats": stats, "levels": levels_dict, "engine_us": engine_us or [],
                "end_to_end_us": e2e_us,
                "bypass": bool(session.bypass) if session is not None else False,
                "monitor": self.counts()}

    def _stats(self, session) -> dict:
        """The stats report: in full (percentiles over every node's ring, about a millisecond
        for voice.yaml) every STATS_EVERY-th snapshot, and in between the last full one with
        its counters brought up to date (a few microseconds)."""
        runner = self.runner
        full = self._full_stats
        if full is None or self._seq % STATS_EVERY == 0 or runner.state != "running" \
                or self._full_session is not session:
            full = self._full_stats = runner.stats()
            self._full_session = session
            return full
        c = session.counters
        stats = dict(full)
        stats.update(frames_in=c.frames_in, frames_out=c.frames_out, events_out=c.events_out,
                     drops=c.drops, errors=c.errors,
                     serialization_events=session.serialization.events,
                     copies={"engine": c.engine_copies, "cow": c.cow, "io": c.io},
                     xruns={"input_overflow": c.input_overflow,
                            "output_underflow": c.output_underflow},
                     stop_reason=runner.stop_reason)
        return stats

    def _finish(self) -> None:
        """The run is over: last events, the final snapshot and report, flushed for a moment."""
        try:
            self.tick()
            end = encode({"type": "end", "state": self.runner.state,
                          "reason": self.runner.stop_reason, "stats": self._final})
            for client in list(self._clients.values()):
                self._queue(client, "reply", end)
                self._flush(client)
            deadline = time.monotonic() + 1.0
            while any(c.pending or c.queue for c in self._clients.values()) \
                    and time.monotonic() < deadline:
                for key, mask in self._selector.select(0.05):
                    if isinstance(key.data, _Client) and mask & selectors.EVENT_WRITE:
                        self._flush(key.data)
        except Exception:
            pass


def _sparkline(ring) -> list[float]:
    """The last SPARK_FRAMES latencies of a LatencyRing in us, oldest first, to 0.1 us (the
    snapshot is JSON: fewer digits, fewer bytes)."""
    return np.round(ring.last_ns(SPARK_FRAMES) / 1e3, 1).tolist()
