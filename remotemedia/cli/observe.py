"""What watches a `stream` run besides its report: the monitor socket and Prometheus
endpoint (--monitor, --metrics-port), the recorder and tracer (--record, --trace) and the
plugins' observers (--observe), each joining the runner's observer list, and the arrival
timeline of --arrivals.
"""

from __future__ import annotations

import os

from ..engine.errors import RemoteMediaError, UsageError
from .common import PROG, _note


class _Observers:
    """The monitor socket and the Prometheus endpoint of one run (either may be absent)."""

    def __init__(self, monitor=None, metrics=None):
        self.monitor = monitor
        self.metrics = metrics
        self.recorder = None     # a recording started by the monitor's `record` command

    def serve_record(self, manifest_path: str) -> None:
        """Answer the monitor's `record` command: {"action": "start", "path"?} starts a
        Recorder on the running stream (record.py; default folder
        remotemedia-recording-PID-TIME in the current directory), {"action": "stop"} finishes
        it. Runs on the monitor's thread; the recorder never blocks the audio path."""
        runner = self.monitor.runner

        def handle(args: dict) -> dict:
            if args["action"] == "start":
                if self.recorder is not None:
                    raise ValueError(f"already recording to {self.recorder.path}")
                if runner.source.runs_schedule:
                    raise ValueError("callback mode pushes blocks in the audio callback: "
                                     "recording needs --mode queued")
                from ..engine.manifest import read_manifest_document
                from ..record import Recorder
                import time
                path = args.get("path") or (f"remotemedia-recording-{os.getpid()}-"
                                            f"{time.strftime('%Y%m%d-%H%M%S')}")
                recorder = Recorder(path, manifest_document=read_manifest_document(
                    manifest_path)[0]).bind(runner)
                recorder.open()
                self.recorder = recorder
                runner.observers.join(recorder)  # told from the runner's next block on
                return {"recording": str(recorder.path)}
            return self._stop_recording(runner.stats() if runner.session is not None
                                        else None)

        self.monitor.register_command("record", handle)

    def _stop_recording(self, stats) -> dict:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            raise ValueError("not recording")
        recorder.stop()
        try:
            summary = recorder.close(stats)   # waits for the block in flight, then leaves
        finally:
            if recorder.runner is not None:
                recorder.runner.observers.leave(recorder)
        return {"recorded": str(recorder.path), "blocks_recorded": summary["blocks_recorded"]}

    def close(self, stats: dict | None) -> None:
        """After the run: clients get the final report, the sockets close, and the report
        gains a `monitor` section with the monitor's own counters. A recording started over
        the monitor is finished first."""
        if self.recorder is not None:
            self._stop_recording(stats)
        if self.metrics is not None:
            self.metrics.close()
        if self.monitor is not None:
            self.monitor.close(stats)
            if stats is not None:
                stats["monitor"] = self.monitor.counts()


def start_observers(args, runner, input_spec: str, output_spec: str) -> _Observers:
    """--monitor and --metrics-port: start the monitor thread (and its socket) and the
    metrics server. Raises UsageError (exit 2) when a socket or port cannot be had."""
    if args.monitor is None and args.metrics_port is None:
        return _Observers()
    from ..monitor import protocol
    from ..monitor.server import Monitor
    path = None
    if args.monitor is not None:
        path = protocol.default_socket_path() if args.monitor == "" else args.monitor
    from .common import manifest_label
    label = manifest_label(args.manifest)
    info = {"path": os.path.abspath(label) if isinstance(args.manifest, str) else label,
            "input": input_spec,
            "output": output_spec, "realtime": runner.realtime}
    monitor = Monitor(runner, socket_path=path, info=info)
    runner.measure_levels = runner.measure_levels or path is not None
    metrics = None
    if args.metrics_port is not None:
        try:
            from ..prometheus import MetricsServer
        except ImportError as exc:
            monitor.close()
            raise UsageError(f"--metrics-port needs prometheus-client (pip install "
                             f"'remotemedia[monitor]'): {exc}") from None
        try:
            metrics = MetricsServer(runner, monitor, args.metrics_port, args.metrics_host)
        except BaseException:
            monitor.close()
            raise
    monitor.start()
    if path is not None:
        _note(f"monitor: {path} (attach with: {PROG} tui --attach {os.getpid()})")
    if metrics is not None:
        _note(f"metrics: {metrics.url}")
        if metrics.warning:
            _note(metrics.warning)
    return _Observers(monitor, metrics)


def _arrivals_clock(args, source, manifest):
    """--arrivals FILE: an ArrivalClock for an input that does not pace itself, else None."""
    if not getattr(args, "arrivals", None):
        return None
    from ..replay import ArrivalClock, parse_arrivals
    if source.clocked:
        raise UsageError(f"--arrivals times an input that does not pace itself (a file, a "
                         f"generator); the input here is {source.description}")
    a = manifest.audio
    arrivals = parse_arrivals(args.arrivals, a.block_size, a.sample_rate)
    return ArrivalClock(arrivals, a.block_size / a.sample_rate, realtime=bool(args.realtime))


def check_observers(args) -> None:
    """Every --observe names a known kind (UsageError, exit 2, before anything opens)."""
    if getattr(args, "observe", None):
        from ..observers import observer_kinds
        for spec in args.observe:
            observer_kinds.check(spec)


def _observers(args, runner, source):
    """The Recorder and the Tracer that --record and --trace ask for (each None if not), each
    joined to `runner.observers`, and the kinds --observe names (observers.observer_kinds).
    UsageError (exit 2) for an unknown kind or one that refuses its argument. A manifest
    with a VAD gets the turn observer too (turn_observer.py: the report's `turns`)."""
    from ..turn_observer import TurnObserver
    TurnObserver.attach(runner)
    recorder = tracer = None
    if getattr(args, "record", None):
        from ..engine.manifest import read_manifest_document
        from ..record import Recorder
        if source.runs_schedule:
            raise UsageError("--record keeps blocks as the engine thread pushes them; with "
                             "--mode callback they are pushed in the audio callback: use "
                             "--mode queued")
        document, _ = read_manifest_document(args.manifest)
        recorder = Recorder(args.record, manifest_document=document).bind(runner)
        runner.observers.join(recorder)
    if getattr(args, "trace", None):
        from ..trace import Tracer, check_trace_path
        check_trace_path(args.trace)
        tracer = Tracer().bind(runner)
    for spec in getattr(args, "observe", None) or ():
        from ..observers import observer_kinds
        runner.observers.join(observer_kinds.make(spec, runner))
    return recorder, tracer


def _finish_observers(stats, recorder, tracer, args):
    """Close the recording (report.json) and write the trace; the error to report, if any."""
    failure = None
    if recorder is not None:
        try:
            summary = recorder.close(stats)
            if stats is not None:
                stats["recording"] = summary
            _note(f"recorded {summary['blocks_recorded']} blocks to {recorder.path}"
                  + (f" ({summary['blocks_dropped']} not recorded: the writer fell behind)"
                     if summary["blocks_dropped"] else ""))
        except (RemoteMediaError, OSError) as exc:
            failure = exc if isinstance(exc, RemoteMediaError) else RemoteMediaError(
                f"--record: {exc}")
    if tracer is not None:
        try:
            count = tracer.write(args.trace)
            _note(f"trace: {count} events in {args.trace}")
        except RemoteMediaError as exc:
            failure = failure or exc
        except OSError as exc:
            failure = failure or RemoteMediaError(f"--trace: cannot write {args.trace}: "
                                                  f"{exc.strerror}")
    return failure
