"""`stream --metrics-port PORT`: the run's counters as Prometheus metrics (prometheus-client).

Nothing here touches the audio path. A scrape runs on prometheus-client's HTTP thread and reads
the same stats report the TUI and the monitor read (`runner.stats()`), plus what the monitor
thread keeps: events by type and the latency histograms it folds from the session's latency rings
(remotemedia.monitor.latency_histogram.LatencyHistogram). The collector is registered on a registry of its
own, so the process's default registry (and its GC/process collectors) stays out of it.

Metrics (all prefixed remotemedia_):

    build_info{version,python,numpy}       the build serving them
    frames_in_total, frames_out_total, events_out_total, drops_total,
    serialization_events_total                                             counters
    copies_total{kind=engine|cow|io}, xruns_total{kind=input_overflow|output_underflow}
    node_calls_total{node,type}, node_errors_total{node,type}   (the run's errors are their
                                           sum: no second metric counts them again)
    events_total{type}                     events the graph emitted, by their "type" field
    monitor_events_dropped_total, monitor_snapshots_dropped_total
    engine_latency_seconds                 histogram: a block entering to its last output
    node_latency_seconds{node,type}        histogram: one process() call (buckets from 1 us)
    end_to_end_latency_seconds             histogram: ADC to DAC (device runs only)
    running                                gauge, 1 while the run is running

A run with a VAD (the report's `turns` section, turn_observer.py) adds, from its turns so far:

    turns_total, interruptions_total       counters: user turns, barge-ins
    voice_to_voice_seconds                 histogram: first reply sample out - user speech end
    turn_stage_seconds{node}               histogram: voice-to-voice's breakdown per stage
                                           (node "endpoint", a node id, or "output")
    barge_in_stop_seconds                  histogram: the user's speech_start to the bot's
                                           last sample out
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import make_wsgi_app
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, InfoMetricFamily)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

from .engine.errors import UsageError

PREFIX = "remotemedia_"
#: what a scrape may cost the run (the scrape threads share the interpreter with the audio
#: thread): connections served at once (each on a thread; more get a 503 at once), the listen
#: backlog, seconds a connection may take to send its request (per read, and in all: a slowloris
#: client is cut off), connections accepted a second, and how long a collected set of metrics is
#: served again before the run is read anew
MAX_CONNECTIONS = 4
LISTEN_BACKLOG = 128
READ_TIMEOUT_S = 5.0
REQUEST_DEADLINE_S = 10.0
ACCEPTS_PER_S = 50.0
COLLECT_EVERY_S = 0.25
#: bytes of request (line and headers) read from one connection; beyond, the request ends
MAX_REQUEST_BYTES = 16 * 1024
#: bucket bounds of the turn histograms (s): a voice agent answers in 0.3 to a few seconds
TURN_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class RunCollector:
    """A prometheus-client collector over one StreamRunner and its Monitor."""

    def __init__(self, runner, monitor):
        self.runner = runner
        self.monitor = monitor
        self._lock = threading.Lock()
        self._cached: list = []
        self._cached_at = float("-inf")

    def collect(self):
        """prometheus-client's collector hook: the run's counters, per-node errors and calls,
        events by type and the latency histograms (scrape thread). Scrapes within
        COLLECT_EVERY_S of the last read get what it read: however often it is scraped, the run
        is read at most 1/COLLECT_EVERY_S times a second."""
        with self._lock:
            now = time.monotonic()
            if now - self._cached_at >= COLLECT_EVERY_S:
                self._cached = list(self._collect())
                self._cached_at = now
            return list(self._cached)

    def _collect(self):
        runner, monitor = self.runner, self.monitor
        stats = runner.stats() if runner.session is not None else None

        def counter(name, doc, value, labels=None, label_values=None):
            family = CounterMetricFamily(PREFIX + name, doc, labels=labels)
            if labels:
                for values, v in label_values:
                    family.add_metric(values, v)
            else:
                family.add_metric([], value)
            return family

        yield self._build_info()
        running = GaugeMetricFamily(PREFIX + "running", "1 while the run is running")
        running.add_metric([], 1.0 if runner.state == "running" else 0.0)
        yield running
        s = stats or {}
        for key, doc in (("frames_in", "audio frames pushed into the graph"),
                         ("frames_out", "audio frames that reached the output"),
                         ("events_out", "non-audio outputs of the graph"),
                         ("drops", "frames dropped"),
                         ("serialization_events", "arrays serialized (pickled or encoded)")):
            yield counter(key, doc, s.get(key, 0))
        copies = s.get("copies", {})
        yield counter("copies", "array copies by kind", None, ["kind"],
                      [([k], copies.get(k, 0)) for k in ("engine", "cow", "io")])
        xruns = s.get("xruns", {})
        yield counter("xruns", "device xruns by kind", None, ["kind"],
                      [([k], xruns.get(k, 0)) for k in ("input_overflow", "output_underflow")])
        nodes = s.get("nodes", {})
        yield counter("node_calls", "process() calls per node", None, ["node", "type"],
                      [([n, d.get("type", "")], d.get("calls", 0)) for n, d in nodes.items()])
        yield counter("node_errors", "errors per node", None, ["node", "type"],
                      [([n, d.get("type", "")], d.get("errors", 0)) for n, d in nodes.items()])
        by_type = dict(monitor.events_by_type)
        yield counter("events", "events the graph emitted, by type", None, ["type"],
                      [([k], v) for k, v in sorted(by_type.items())])
        yield counter("monitor_events_dropped",
                      "events the monitor dropped because its queue was full",
                      monitor.events_dropped)
        yield counter("monitor_snapshots_dropped",
                      "snapshots a slow monitor client lost", monitor.snapshots_dropped)
        with monitor._lock:
            if runner.session is not None:
                monitor.engine_hist.fold(runner.session.engine_latency)
                monitor.e2e_hist.fold(runner.session.end_to_end_latency)
            for name, hist, doc in (
                    ("engine_latency_seconds", monitor.engine_hist,
                     "time from a block entering the graph to its last output"),
                    ("end_to_end_latency_seconds", monitor.e2e_hist,
                     "ADC-to-DAC latency of played blocks (device runs)")):
                family = HistogramMetricFamily(PREFIX + name, doc)
                family.add_metric([], hist.cumulative(), sum_value=hist.sum_s)
                yield family
            monitor.node_hists.fold(runner.session)
            family = HistogramMetricFamily(
                PREFIX + "node_latency_seconds", "time of one process() call per node (a fused "
                "node: its share of its group's multiply)", labels=["node", "type"])
            for node_id, (node_type, _, hist) in monitor.node_hists.by_node.items():
                family.add_metric([node_id, node_type], hist.cumulative(),
                                  sum_value=hist.sum_s)
            yield family
        if isinstance(s.get("turns"), dict):
            yield from turn_metrics(s["turns"])


    @staticmethod
    def _build_info():
        import platform
        import numpy
        from . import __version__
        info = InfoMetricFamily(PREFIX + "build", "the remotemedia build serving these metrics")
        info.add_metric([], {"version": __version__, "python": platform.python_version(),
                             "numpy": numpy.__version__})
        return info


def turn_metrics(section: dict):
    """The turn metrics (module docstring) from a stats report's `turns` section: histograms
    over every turn so far (a turn's figures are fixed once measured, so the counts only
    grow, as Prometheus wants)."""
    rows = section.get("turns") or []
    yield _counter("turns", "user turns (the VAD's speech ends)", section.get("count", 0))
    yield _counter("interruptions", "barge-ins: the user spoke over the bot",
                   section.get("interruptions", 0))
    v2v = HistogramMetricFamily(PREFIX + "voice_to_voice_seconds",
                                "first reply sample out - the user's speech end, per turn")
    v2v.add_metric([], *_buckets([r.get("voice_to_voice_ms") for r in rows]))
    yield v2v
    stages: dict[str, list] = {}
    for r in rows:
        for stage, ms in (r.get("breakdown_ms") or {}).items():
            stages.setdefault(stage, []).append(ms)
    family = HistogramMetricFamily(PREFIX + "turn_stage_seconds", "voice-to-voice's "
                                   "breakdown per stage (endpoint, a node, output), per turn",
                                   labels=["node"])
    for stage, values in stages.items():
        family.add_metric([stage], *_buckets(values))
    yield family
    stop = HistogramMetricFamily(PREFIX + "barge_in_stop_seconds",
                                 "the user's speech start to the bot's last sample out")
    stop.add_metric([], *_buckets([r.get("barge_in_stop_ms") for r in rows]))
    yield stop


def _counter(name: str, doc: str, value) -> CounterMetricFamily:
    family = CounterMetricFamily(PREFIX + name, doc)
    family.add_metric([], value)
    return family


def _buckets(values_ms) -> tuple[list, float]:
    """(cumulative buckets [(le, count)], sum in s) of the values (ms) that are not None."""
    seconds = [v / 1e3 for v in values_ms if v is not None]
    buckets = [(repr(b), sum(1 for x in seconds if x <= b)) for b in TURN_BUCKETS_S]
    return buckets + [("+Inf", len(seconds))], sum(seconds)


class _Limited:
    """A connection's read side that ends after `limit` bytes: what a request may make the
    server parse is bounded (http.client would take 100 header lines of 64 KiB each)."""

    def __init__(self, raw, limit: int):
        self._raw = raw
        self._left = limit

    def readline(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        line = self._raw.readline(size) if size > 0 else b""
        self._left -= len(line)
        return line

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._raw.read(size) if size > 0 else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._raw.close()


class _QuietHandler(WSGIRequestHandler):
    """One request per connection, at most MAX_REQUEST_BYTES read, no access log."""

    def setup(self):
        super().setup()
        self.rfile = _Limited(self.rfile, MAX_REQUEST_BYTES)

    def log_message(self, format, *args):
        """Log nothing."""


class _BoundedServer(ThreadingWSGIServer):
    """prometheus-client's threading WSGI server with bounds: MAX_CONNECTIONS handler threads
    (a connection beyond them gets 503 from the accepting thread and is closed), at most
    ACCEPTS_PER_S connections accepted a second (the rest wait in the kernel's backlog), and
    no connection kept past REQUEST_DEADLINE_S (READ_TIMEOUT_S per read)."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.active: dict[socket.socket, float] = {}
        self.active_lock = threading.Lock()
        self.refused_busy = 0        # connections answered 503: MAX_CONNECTIONS were busy
        self.timed_out = 0           # connections cut off at REQUEST_DEADLINE_S
        self._next_accept = 0.0
        super().__init__(*args, **kwargs)

    def get_request(self):
        wait = self._next_accept - time.monotonic()
        if wait > 0:                 # paced: this thread only accepts; the backlog waits
            time.sleep(wait)
        self._next_accept = max(self._next_accept, time.monotonic() - 1.0) + 1.0 / ACCEPTS_PER_S
        sock, addr = super().get_request()
        sock.settimeout(READ_TIMEOUT_S)
        return sock, addr

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.refused_busy += 1
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self.active_lock:
            self.active[request] = time.monotonic() + REQUEST_DEADLINE_S
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request) -> None:
        with self.active_lock:
            if self.active.pop(request, None) is not None:
                self.slots.release()

    def service_actions(self):
        """Between accepts (at least every poll interval): cut off connections past their
        deadline; their threads then see the connection end and return."""
        now = time.monotonic()
        with self.active_lock:
            late = [r for r, deadline in self.active.items() if deadline < now]
        for request in late:
            self.timed_out += 1
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _best_family(host: str, port: int) -> socket.AddressFamily:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return infos[0][0]


def exposure_warning(host: str) -> str | None:
    """A one-line warning when `host` makes the metrics reachable beyond this machine (any
    address that is not loopback: 0.0.0.0, ::, a LAN address, a name resolving to one);
    None for loopback."""
    try:
        addresses = {ipaddress.ip_address(host.split("%")[0])}
    except ValueError:
        try:
            addresses = {ipaddress.ip_address(info[4][0].split("%")[0])
                         for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
        except (OSError, ValueError):
            addresses = set()
    if addresses and all(a.is_loopback for a in addresses):
        return None
    where = "every network interface" if any(a.is_unspecified for a in addresses) \
        else f"the network ({host})"
    return (f"warning: --metrics-host {host}: the run's metrics are served without "
            f"authentication on {where}; use 127.0.0.1 (the default) to keep them local")


def format_url(host: str, port: int) -> str:
    """http://HOST:PORT/metrics, an IPv6 address in brackets (http://[::1]:9100/metrics)."""
    return f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"


class MetricsServer:
    """Serve /metrics on (host, port); port 0 picks a free one (see `.port`).
    Raises UsageError when the port cannot be bound."""

    def __init__(self, runner, monitor, port: int, host: str = "127.0.0.1"):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RunCollector(runner, monitor))
        try:
            family = _best_family(host, port)

            class Server(_BoundedServer):
                address_family = family
            self._server = Server((host, port), _QuietHandler)
        except (OSError, UnicodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"--metrics-port {port}: cannot listen on "
                             f"{format_url(host, port)[7:-8]}: {why}") from None
        self._server.set_app(make_wsgi_app(self.registry))
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="remotemedia-metrics", daemon=True)
        self._thread.start()
        self.host = host
        self.port = self._server.server_address[1]
        #: a one-line warning for stderr when the metrics are reachable from other machines
        self.warning = exposure_warning(host)

    @property
    def url(self) -> str:
        """The address to scrape, http://HOST:PORT/metrics (an IPv6 HOST in brackets)."""
        return format_url(self.host, self.port)

    def counts(self) -> dict[str, int]:
        """Connections refused because MAX_CONNECTIONS were busy, and cut off at their
        deadline."""
        return {"refused_busy": self._server.refused_busy,
                "timed_out": self._server.timed_out}

    def close(self) -> None:
        """Stop serving. Safe twice."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)
