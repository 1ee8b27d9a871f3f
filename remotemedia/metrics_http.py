"""`stream --metrics-port PORT`: the run's counters as Prometheus metrics (prometheus-client).

Nothing here touches the audio path. A scrape runs on prometheus-client's HTTP thread and reads
the same stats report the TUI and the monitor read (`runner.stats()`), plus what the monitor
thread keeps: events by type and the latency histograms it folds from the session's latency rings
(remotemedia.monitor.histogram.LatencyHistogram). The collector is registered on a registry of its
own, so the process's default registry (and its GC/process collectors) stays out of it.

Metrics (all prefixed remotemedia_):

    frames_in_total, frames_out_total, events_out_total, drops_total, errors_total,
    serialization_events_total                                             counters
    copies_total{kind=engine|cow|io}, xruns_total{kind=input_overflow|output_underflow}
    node_calls_total{node,type}, node_errors_total{node,type}
    events_total{type}                     events the graph emitted, by their "type" field
    monitor_events_dropped_total, monitor_snapshots_dropped_total
    engine_latency_seconds                 histogram: a block entering to its last output
    end_to_end_latency_seconds             histogram: ADC to DAC (device runs only)
    running                                gauge, 1 while the run is running
"""

from __future__ import annotations

from prometheus_client import start_http_server
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.registry import CollectorRegistry

from .engine.errors import UsageError

PREFIX = "remotemedia_"


class RunCollector:
    """A prometheus-client collector over one StreamRunner and its Monitor."""

    def __init__(self, runner, monitor):
        self.runner = runner
        self.monitor = monitor

    def collect(self):
        """prometheus-client's collector hook: the run's counters, per-node errors and calls,
        events by type and the latency histograms, read from the monitor's last snapshot
        (scrape thread)."""
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

        running = GaugeMetricFamily(PREFIX + "running", "1 while the run is running")
        running.add_metric([], 1.0 if runner.state == "running" else 0.0)
        yield running
        s = stats or {}
        for key, doc in (("frames_in", "audio frames pushed into the graph"),
                         ("frames_out", "audio frames that reached the output"),
                         ("events_out", "non-audio outputs of the graph"),
                         ("drops", "frames dropped"),
                         ("errors", "node errors"),
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


class MetricsServer:
    """Serve /metrics on (host, port); port 0 picks a free one (see `.port`).
    Raises UsageError when the port cannot be bound."""

    def __init__(self, runner, monitor, port: int, host: str = "127.0.0.1"):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RunCollector(runner, monitor))
        try:
            self._server, self._thread = start_http_server(port, addr=host,
                                                           registry=self.registry)
        except OSError as exc:
            raise UsageError(f"--metrics-port {port}: cannot listen on {host}:{port}: "
                             f"{exc.strerror}") from None
        self.host = host
        self.port = self._server.server_address[1]

    @property
    def url(self) -> str:
        """The address to scrape, http://HOST:PORT/metrics."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving. Safe twice."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)
