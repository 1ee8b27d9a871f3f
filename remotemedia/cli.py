"""The `remotemedia` command: argument parsing, and each command a thin function over the engine.

    remotemedia stream --manifest FILE [--input SPEC] [--output SPEC] [--duration S]
                       [--realtime | --fast] [--json] [--strict] [--events FILE]
                       [--allow-import MODULE ...] [--mode queued|callback] [--reconnect]
                       [--block-size N | --chunk-size N] [--event-format raw|health]
                       [--record DIR] [--trace FILE] [--arrivals FILE]
                       [--monitor [PATH]] [--metrics-port PORT [--metrics-host HOST]]
    remotemedia tui [--manifest FILE] [--input SPEC] [--output SPEC] [--no-reconnect]
    remotemedia tui --spawn --manifest FILE [--input SPEC] [--output SPEC] [--keep-running]
    remotemedia tui --attach [PATH|PID]
    remotemedia ps [--json]
    remotemedia validate FILE
    remotemedia convert-manifest FILE [--output OUT]
    remotemedia nodes [--json]
    remotemedia devices [--json]
    remotemedia replay DIR [--manifest FILE] [--output SPEC] [--realtime] [--compare FILE]
    remotemedia report DIR|REPORT.json [--out DIR]
    remotemedia latency [--input DEVICE] [--output DEVICE] [--jack-loopback] [--json]
    remotemedia batch --manifest FILE INPUTS... [--out DIR] [--workers N] [--ray [ADDRESS]]
                      [--json] [--allow-import MODULE ...]

Exit codes: 0 success, 1 failure while running, 2 bad input (arguments, SPEC, manifest, file),
130 after SIGINT and 143 after SIGTERM (the report is printed and files are finalized first).
A RemoteMediaError or bad input is one line on stderr, never a traceback.

stdout carries data only: events (one JSON object per line), then with --json the stats report
as the last line. Everything for people (start line, live status, summary) goes to stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
import traceback


from .engine import strictjson
from .io.events import event_record, json_default as _json_default
from .engine.errors import RemoteMediaError, UsageError

PROG = "remotemedia"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
STOP_REASON = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
STATUS_INTERVAL_S = 0.25


# -- entry point -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """The `remotemedia` entry point: parse `argv` (default sys.argv[1:]) and run the chosen
    command; returns its exit code. A RemoteMediaError is printed as one line on stderr and
    gives its exit_code (2 for bad input, 1 otherwise); Ctrl-C outside a run gives 130.
    --help and --version exit through argparse's SystemExit(0)."""
    _prepare_process()
    try:
        args = build_parser().parse_args(argv)
        return args.command(args)
    except RemoteMediaError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_SIGNAL[signal.SIGINT]


def _prepare_process() -> None:
    # A file name that is not UTF-8 (caf\xe9.wav) reaches us as a surrogate escape; echo it
    # back as the same bytes rather than failing to print it.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="surrogateescape")
            except (ValueError, OSError):
                pass
    # Past a file-size limit (ulimit -f) the kernel's default is to kill us with SIGXFSZ and
    # lose the file's header; ignored, the write fails with EFBIG and the sink keeps a valid
    # file up to the last whole block.
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 through UsageError."""

    def error(self, message: str):
        command = self.prog[len(PROG):].strip()
        raise UsageError(f"{command + ': ' if command else ''}{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command; each subparser sets `command` to the cmd_*
    function that runs it. A usage error raises UsageError (exit 2) instead of argparse's
    exit."""
    from . import __version__
    parser = _Parser(prog=PROG, description="Real-time audio pipelines from a manifest, "
                                            "zero-copy and measured.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="name", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("stream", help="run a manifest headless, with a final stats report",
                       description="Run a manifest from an input to an output. SPEC is one of: "
                                   "default, device:NAME_OR_INDEX, file:PATH.wav[:SUBTYPE], "
                                   "raw:- (f32 LE on "
                                   "stdin/stdout), sine[:FREQ], chirp, noise, silence, null, "
                                   "virtual.")
    p.add_argument("--manifest", "-m", required=True, metavar="FILE")
    p.add_argument("--input", "-i", default="default", metavar="SPEC",
                   help="where frames come from (default: %(default)s)")
    p.add_argument("--output", "-o", default="default", metavar="SPEC",
                   help="where audio frames go (default: %(default)s)")
    p.add_argument("--duration", "-d", type=parse_duration, metavar="S",
                   help="stop after S seconds of audio (e.g. 5, 2.5, 300s)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_const", const=True,
                      help="pace frames in real time even without a device")
    pace.add_argument("--fast", dest="realtime", action="store_const", const=False,
                      help="run as fast as possible even with a (virtual) device")
    p.add_argument("--json", action="store_true",
                   help="print the stats report as JSON, as the last line of stdout")
    p.add_argument("--strict", action="store_true",
                   help="fail at the first serialization of an array instead of counting it")
    p.add_argument("--events", metavar="FILE",
                   help="write non-audio outputs (JSON lines) here instead of stdout")
    p.add_argument("--allow-import", action="append", default=[], metavar="MODULE",
                   help="let the manifest name node classes from MODULE (repeatable)")
    add_mode_argument(p)
    p.add_argument("--block-size", "--chunk-size", dest="block_size", type=parse_block_size,
                   metavar="N", help="samples per block, overriding the manifest's (an "
                   "upstream-shape manifest runs in its cli_defaults.chunk_size, else 4000)")
    p.add_argument("--event-format", choices=("raw", "health"), default="raw",
                   help="raw: each event as the node emits it; health: the upstream "
                        "stream-health tools' HealthEvent lines (silence, low_volume, clipping, "
                        "channel_imbalance, dropouts, drift, freeze, cadence, av_skew, health)")
    p.add_argument("--record", metavar="DIR",
                   help="keep the input, a per-block timeline, the events, the output and the "
                        "report in DIR, for `remotemedia replay` and `remotemedia report`")
    p.add_argument("--trace", metavar="FILE",
                   help="write a Chrome trace-event JSON of the run (ui.perfetto.dev opens it)")
    p.add_argument("--arrivals", metavar="FILE",
                   help="release the input's blocks at the times FILE lists ('INDEX: "
                        "MICROSECONDS' per line, INDEX a sample index or bN for a block); "
                        "simulated time unless --realtime")
    p.add_argument("--reconnect", action="store_true",
                   help="when a sound device or its server goes away, wait for it to come back "
                        "and carry on (the gap is reported as a discontinuity) instead of "
                        "ending the run with exit code 1")
    add_monitor_arguments(p)
    p.set_defaults(command=cmd_stream)

    p = sub.add_parser("convert-manifest", help="write the native equivalent of an "
                                                "upstream-shape manifest",
                       description="Write the native form of a manifest: explicit input and "
                                   "output connections, an audio block, canonical node names "
                                   "(FastResampleNode -> Resample, ...), no keys that have no "
                                   "effect. Notes go to stderr.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--output", "-o", metavar="OUT", help="write here instead of stdout")
    p.add_argument("--allow-import", action="append", default=[], metavar="MODULE")
    p.set_defaults(command=cmd_convert_manifest)

    p = sub.add_parser("validate", help="check a manifest without running it")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--allow-import", action="append", default=[], metavar="MODULE")
    p.set_defaults(command=cmd_validate)

    p = sub.add_parser("nodes", help="list node types with their parameters")
    p.add_argument("--json", action="store_true", help="as one JSON array")
    p.set_defaults(command=cmd_nodes)

    p = sub.add_parser("devices", help="list host APIs and sound devices, marking defaults")
    p.add_argument("--json", action="store_true", help="as one JSON array")
    p.set_defaults(command=cmd_devices)

    add_observability_commands(sub)

    p = sub.add_parser("tui", help="the interactive terminal UI")
    p.add_argument("--manifest", "-m", metavar="FILE")
    p.add_argument("--input", "-i", metavar="SPEC")
    p.add_argument("--output", "-o", metavar="SPEC")
    add_mode_argument(p)
    p.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=True,
                   help="when a sound device or its server goes away, wait for it and carry on "
                        "(default), or end the run (--no-reconnect)")
    p.add_argument("--spawn", action="store_true",
                   help="run the stream in a child process (`stream --monitor`) and attach to "
                        "it, so drawing never holds the audio process's GIL; q stops it")
    p.add_argument("--keep-running", action="store_true",
                   help="with --spawn: q detaches and leaves the run going")
    p.add_argument("--attach", nargs="?", const="", default=None, metavar="PATH|PID",
                   help="watch and steer a stream started with --monitor (the only live one "
                        "when none is named); q detaches and leaves it running")
    p.set_defaults(command=cmd_tui)

    p = sub.add_parser("ps", help="list the running streams one may attach to (--monitor)")
    p.add_argument("--json", action="store_true", help="as one JSON array")
    p.set_defaults(command=cmd_ps)

    add_batch_parser(sub)
    return parser


def add_batch_parser(sub) -> None:
    """Add the `batch` command (manifest, INPUTS, --out, --workers, --ray, --json, --allow-
    import) to the subparsers `sub`."""
    p = sub.add_parser("batch", help="run a manifest over many recordings (a pool or Ray)",
                       description="Run a manifest over every input in simulated time, on a "
                                   "local process pool or, with --ray, as Ray tasks. INPUTS are "
                                   "audio files, directories, glob patterns and list files "
                                   "(@FILE or *.txt). Reports and events go under --out; a "
                                   "rerun with the same --out skips inputs already done.")
    p.add_argument("--manifest", "-m", required=True, metavar="FILE")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", "-o", default="batch-out", metavar="DIR",
                   help="where reports, events and summary.json go (default: %(default)s)")
    p.add_argument("--workers", "-w", type=parse_workers, metavar="N",
                   help="inputs run at once (default: the CPUs here, or the cluster's)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run each input as a Ray task on the cluster at ADDRESS (default: the "
                        "one ray.init() finds: RAY_ADDRESS, one started here, else a new one)")
    p.add_argument("--json", action="store_true",
                   help="print the JSON summary as the last line of stdout")
    p.add_argument("--allow-import", action="append", default=[], metavar="MODULE",
                   help="let the manifest name node classes from MODULE (repeatable)")
    p.set_defaults(command=cmd_batch)


def parse_workers(text: str) -> int:
    """argparse type for --workers: a whole number of at least 1; ArgumentTypeError otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got '{text}'")
    return value


def add_monitor_arguments(p) -> None:
    """Add --monitor [PATH], --metrics-port PORT and --metrics-host HOST to the parser `p` (used
    by `stream`)."""
    p.add_argument("--monitor", nargs="?", const="", default=None, metavar="PATH",
                   help="serve a monitor socket that `tui --attach` and other clients use "
                        "(default: a per-user socket named by PID; see `remotemedia ps`)")
    p.add_argument("--metrics-port", type=parse_port, default=None, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (0: a free port)")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                   help="address for --metrics-port (default: %(default)s)")


def parse_port(text: str) -> int:
    """argparse type for --metrics-port: a TCP port 0-65535 (0 picks a free one);
    ArgumentTypeError otherwise."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got '{text}'") \
            from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got '{text}'")
    return port


def add_mode_argument(p) -> None:
    """Add --mode queued|callback (default None: queued for a device input) to the parser `p`."""
    p.add_argument("--mode", choices=("queued", "callback"), default=None,
                   help="with a sound device input: run the graph on its own thread (queued, "
                        "the default: a slow node cannot stall the audio thread) or inside the "
                        "audio callback (callback: one block less latency)")


def parse_duration(text: str) -> float:
    """Seconds as a positive finite number, optionally with an 's' suffix."""
    value = text.strip().lower()
    if value.endswith("s"):
        value = value[:-1]
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got '{text}'") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got '{text}'")
    return seconds


def parse_block_size(text: str) -> int:
    """A positive whole number of samples."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number of samples, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number of samples, got '{text}'")
    return value


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


# -- stream ----------------------------------------------------------------------------------------

def cmd_stream(args) -> int:
    """`remotemedia stream`: build the pipeline from --manifest, the source and sink from
    --input/--output, and run it on this thread until the input ends, --duration passes or a
    signal asks it to stop. Events go to stdout (or --events) as JSON lines; the start line,
    the live status (on a terminal) and the summary go to stderr; with --json the stats
    report is the last line of stdout. --record, --trace, --monitor and --metrics-port are
    finished after the run. Returns 0, 1 for a failure while running (the error on one line;
    REMOTEMEDIA_DEBUG=1 adds the traceback), 130/143 after SIGINT/SIGTERM; bad arguments,
    SPECs, manifests or clashing paths raise UsageError/ManifestError (exit 2) before
    anything is opened for writing."""
    from .engine.session import Pipeline
    from .io.spec import make_sink, make_source
    from .runner import StreamRunner

    if args.json and args.output.strip() == "raw:-":
        raise UsageError("--json prints the report on stdout, which --output raw:- uses for "
                         "audio; drop one of them")
    block = {"block_size": args.block_size} if args.block_size else None
    pipeline = Pipeline.from_manifest(args.manifest, allow_import=args.allow_import,
                                      audio=block)
    manifest = pipeline.manifest
    own = _file_format(args.input, manifest)
    if own:
        # An upstream-shape manifest that pins no format runs at the file's own (Part A).
        pipeline = Pipeline.from_manifest(args.manifest, allow_import=args.allow_import,
                                          audio={**(block or {}), **own})
        manifest = pipeline.manifest
    input_spec, output_spec = args.input, args.output
    if args.realtime is False:
        # --fast is simulated time, which only the virtual device can keep: `default` is it.
        input_spec = "virtual" if input_spec.strip() == "default" else input_spec
        output_spec = "virtual" if output_spec.strip() == "default" else output_spec
    source = make_source(input_spec, manifest.audio, mode=args.mode)
    if args.mode == "callback" and not source.runs_schedule:
        raise UsageError(f"--mode callback runs the graph in the input device's audio "
                         f"callback; the input here is {source.description}, not a device")
    sink = make_sink(output_spec, manifest.output_format)
    if args.realtime is False and (source.clocked or sink.clocked):
        raise UsageError("--fast cannot hurry a sound device, which plays and records in real "
                         "time; use a file, a generator or the virtual device")
    check_paths(reads=source.reads() + _named("--arrivals", args.arrivals),
                writes=sink.writes() + _named("--events", args.events)
                + _named("--trace", args.trace) + _recording_files(args.record))
    _watch_devices(source, sink, args.reconnect)
    sink_on_stdout = sink.uses_stdout
    events = _open_events(args.events, sink_on_stdout)
    if args.event_format == "health":
        events.health_start_s = time.time()  # the run's start on the wall clock, read once
    clock = _arrivals_clock(args, source, manifest)
    runner = StreamRunner(pipeline, source, sink,
                          realtime=True if clock is not None else args.realtime, clock=clock,
                          duration=args.duration, strict=args.strict, on_event=events)
    events.flush_each = runner.realtime
    recorder, tracer = _observers(args, runner, source)
    observers = start_observers(args, runner, input_spec, output_spec)
    if observers.monitor is not None:
        runner.on_event = observers.monitor.tee(events)
        observers.serve_record(args.manifest)
    signals = _SignalStop(runner)
    status = _StatusLine(runner, sys.stderr) if sys.stderr.isatty() else None
    failure: BaseException | None = None
    signals.install()  # before anything is said: from here on a signal means a clean stop
    try:
        _note(_start_line(manifest, source, sink, runner, args.duration)
              + (f", arrivals from {args.arrivals}" if clock is not None else ""))
        if recorder is not None:
            recorder.open()
        if not runner.realtime and args.duration is None and source.endless:
            _note("the input never ends and the run is not paced: stop it with Ctrl-C, or "
                  "give --duration")
        if status is not None:
            status.start()
        runner.run()
    except (KeyboardInterrupt, Exception) as exc:
        # The runner has closed the session, the source and the sink (finalizing files) on
        # its way out; what is left is to report. KeyboardInterrupt is a second signal.
        failure = exc
    finally:
        if status is not None:
            status.stop()
        signals.restore()
        events.close()

    stats = runner.stats() if runner.session is not None else None
    if stats is not None and signals.received is not None:
        stats["stop_reason"] = STOP_REASON[signals.received]
    failure = _finish_observers(stats, recorder, tracer, args) or failure
    observers.close(stats)
    if stats is not None:
        print(format_summary(stats, manifest.name), file=sys.stderr)
        if args.json:
            _print_stdout(strictjson.dumps(stats))
    if signals.received is not None:
        return EXIT_SIGNAL[signals.received]
    if failure is None:
        return EXIT_OK
    if isinstance(failure, KeyboardInterrupt):
        return EXIT_SIGNAL[signal.SIGINT]
    if isinstance(failure, RemoteMediaError):
        _error(str(failure))
        return failure.exit_code
    _error(f"{type(failure).__name__}: {failure} (REMOTEMEDIA_DEBUG=1 shows the traceback)")
    if os.environ.get("REMOTEMEDIA_DEBUG"):
        traceback.print_exception(failure)
    return EXIT_FAILED


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
                if runner.observer is not None:
                    raise ValueError("this run already records or traces (--record/--trace)")
                if runner.source.runs_schedule:
                    raise ValueError("callback mode pushes blocks in the audio callback: "
                                     "recording needs --mode queued")
                from .engine.manifest import read_manifest_document
                from .record import Recorder
                import time
                path = args.get("path") or (f"remotemedia-recording-{os.getpid()}-"
                                            f"{time.strftime('%Y%m%d-%H%M%S')}")
                recorder = Recorder(path, manifest_document=read_manifest_document(
                    manifest_path)[0]).bind(runner)
                recorder.open()
                self.recorder = recorder
                runner.observer = recorder       # read by the runner at its next block
                return {"recording": str(recorder.path)}
            return self._stop_recording(runner.stats() if runner.session is not None
                                        else None)

        self.monitor.register_command("record", handle)

    def _stop_recording(self, stats) -> dict:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            raise ValueError("not recording")
        if recorder.runner is not None and recorder.runner.observer is recorder:
            recorder.runner.observer = None
        recorder.stop()
        summary = recorder.close(stats)
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
    from .monitor import protocol
    from .monitor.server import Monitor
    path = None
    if args.monitor is not None:
        path = protocol.default_socket_path() if args.monitor == "" else args.monitor
    info = {"path": os.path.abspath(args.manifest), "input": input_spec,
            "output": output_spec, "realtime": runner.realtime}
    monitor = Monitor(runner, socket_path=path, info=info)
    runner.measure_levels = runner.measure_levels or path is not None
    metrics = None
    if args.metrics_port is not None:
        try:
            from .metrics_http import MetricsServer
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
    return _Observers(monitor, metrics)


def check_paths(reads: list[tuple[str, object]], writes: list[tuple[str, object]]) -> None:
    """Refuse a run that would write over something it reads or writes elsewhere, before
    anything is opened for writing: `--events take.wav` would truncate `--input file:take.wav`.
    Paths are compared by real path (symlinks, `..`, relative spellings) and, where both
    exist, by inode (hard links). `reads`/`writes` are (what, path) pairs such as
    ("--input", "take.wav"). Raises UsageError naming both uses."""
    def key(path) -> bytes:
        return os.path.realpath(os.fsencode(path))

    earlier = [(what, path, key(path)) for what, path in reads]
    for what, path in writes:
        real = key(path)
        for other_what, other_path, other_real in earlier:
            if real == other_real or _same_inode(real, other_real):
                raise UsageError(f"{what} {os.fsdecode(os.fsencode(path))} is the same file as "
                                 f"{other_what} {os.fsdecode(os.fsencode(other_path))}: the run "
                                 f"would overwrite it (nothing was opened)")
        earlier.append((what, path, real))


def _named(what: str, path) -> list[tuple[str, object]]:
    return [(what, path)] if path else []


def _recording_files(directory) -> list[tuple[str, object]]:
    """The files --record DIR writes, so none of them can be an input or another output."""
    if not directory:
        return []
    from .record import FILES
    return [("--record", os.path.join(directory, name)) for name in FILES]


def _same_inode(a: bytes, b: bytes) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _file_format(spec: str, manifest) -> dict:
    """A file input's own rate and channels, for the audio keys the manifest leaves weak."""
    name, sep, arg = spec.partition(":")
    if not manifest.weak_audio or name.strip().lower() != "file" or not arg:
        return {}
    from .engine.node import AudioFormat
    from .io.files import WavSource
    source = WavSource(os.path.expanduser(arg), AudioFormat())  # UsageError if unreadable
    own = {"sample_rate": source.samplerate, "channels": source.channels}
    return {k: v for k, v in own.items() if k in manifest.weak_audio}
def _watch_devices(source, sink, reconnect: bool) -> None:
    """Device ends say at once when their device is lost or back (one line on stderr), and with
    --reconnect wait for a lost device instead of failing."""
    for end in (source, sink):
        if end.supports_reconnect:
            end.reconnect = reconnect
            end.on_notice = _note


def _print_stdout(line: str) -> None:
    """One line on stdout; a reader that went away (`| head`) is not worth a traceback."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _open_events(path: str | None, stdout_taken: bool) -> "_EventWriter":
    if path is None:
        return _EventWriter(None if stdout_taken else sys.stdout, owns=False)
    try:
        stream = open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write --events file {path}: {exc.strerror}") from None
    return _EventWriter(stream, owns=True)


def _start_line(manifest, source, sink, runner, duration) -> str:
    a = manifest.audio
    pace = "real time" if runner.realtime else "as fast as possible"
    until = f", for {duration:g} s" if duration is not None else ""
    return (f"{manifest.name}: {source.description} -> {sink.description}, {a.sample_rate} Hz, "
            f"{a.channels} ch, {a.block_size}-sample blocks, {pace}{until}")


class _SignalStop:
    """SIGINT/SIGTERM ask the runner to stop after the current frame; the loop then closes the
    session, the source and the sink (finalizing files) and the report prints. A second signal
    stops waiting for that (KeyboardInterrupt), though the runner still closes what it opened."""

    def __init__(self, runner):
        self.runner = runner
        self.received: int | None = None
        self._previous: dict = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in EXIT_SIGNAL:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        self.runner.stop(STOP_REASON[signum])


class _EventWriter:
    """Non-audio outputs as JSON lines. A dict value (a meter's reading) is written as it is;
    anything else is wrapped with its kind."""

    def __init__(self, stream, owns: bool):
        self.stream = stream
        self.owns = owns
        self.flush_each = False
        #: set (to the run's start, epoch seconds) to write HealthEvent lines instead
        self.health_start_s: float | None = None
        self.count = 0
        self._warned = False

    def __call__(self, data) -> None:
        self.count += 1
        if self.stream is None:
            if not self._warned:
                self._warned = True
                _note("events are not written: stdout carries raw audio (use --events FILE)")
            return
        if self.health_start_s is not None:
            lines = health_lines(data, self.health_start_s)
            if not lines:
                return
            line = "\n".join(strictjson.dumps(r) for r in lines)
        else:
            line = strictjson.dumps(event_record(data), default=_json_default)
        try:
            self.stream.write(line + "\n")
            if self.flush_each:
                self.stream.flush()
        except BrokenPipeError as exc:
            self.stream = None
            raise RemoteMediaError("events: the reader of stdout went away") from exc
        except OSError as exc:
            raise RemoteMediaError(f"events: cannot write: {exc.strerror}") from exc

    def close(self) -> None:
        if self.stream is None:
            return
        try:
            if self.owns:
                self.stream.close()
            else:
                self.stream.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def health_lines(data, start_epoch_s: float) -> list[dict]:
    """An output as the upstream stream-health tools' HealthEvent lines (UPSTREAM.md §5):
    `type`, `ts` (the run's start plus the event's media time, RFC 3339), the variant's fields,
    `stream_id` when known. Outputs that report nothing wrong give none."""
    if data.kind != "json":
        return []
    from .nodes.upstream_health import health_event_lines
    value = data.value
    media = value.get("timestamp_us") if isinstance(value, dict) else None
    return health_event_lines(value, start_epoch_s=start_epoch_s,
                              media_us=media if isinstance(media, int) else None)


class _StatusLine:
    """A live one-line status on a terminal, redrawn a few times a second from its own thread,
    so the audio loop does no formatting or I/O for it."""

    def __init__(self, runner, stream):
        self.runner = runner
        self.stream = stream
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="remotemedia-status",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(1.0)
        self.stream.write("\r\x1b[K")
        self.stream.flush()

    def _loop(self) -> None:
        while not self._done.wait(STATUS_INTERVAL_S):
            line = self.render()
            if line:
                self.stream.write("\r" + line + "\x1b[K")
                self.stream.flush()

    def render(self) -> str | None:
        session = self.runner.session
        if session is None:
            return None
        c = session.counters
        latency = session.engine_latency.summary_us()
        p50, p99 = (latency.p50, latency.p99) if latency else (0.0, 0.0)
        elapsed = self.runner.frames_released * self.runner.period_s
        return (f"{c.frames_in} frames  ser {session.serialization.events}  copies "
                f"e{c.engine_copies}/cow{c.cow}/io{c.io}  drops {c.drops}  engine p50 "
                f"{p50:.1f}us p99 {p99:.1f}us  {elapsed:.1f}s")


def format_summary(stats: dict, name: str) -> str:
    """The short human summary for stderr."""
    lat = stats["latency_us"]["engine"]
    copies = stats["copies"]
    xruns = stats["xruns"]
    lines = [
        f"{PROG}: {name}: {stats['frames_in']} frames in, {stats['frames_out']} out, "
        f"{stats.get('events_out', 0)} events in {stats['duration_s']:.2f} s "
        f"({stats['realtime_factor']:g}x real time), ended: {stats.get('stop_reason')}",
        f"  serialization events {stats['serialization_events']}, copies engine "
        f"{copies['engine']} cow {copies['cow']} io {copies['io']}, drops {stats['drops']}, "
        f"errors {stats['errors']}, xruns in {xruns['input_overflow']} out "
        f"{xruns['output_underflow']}",
        f"  engine latency p50 {lat['p50']:.1f} us, p99 {lat['p99']:.1f} us, "
        f"max {lat['max']:.1f} us",
    ]
    e2e = stats["latency_us"].get("end_to_end")
    if e2e:
        lines.append(f"  end-to-end latency p50 {e2e['p50'] / 1000:.2f} ms, "
                     f"p99 {e2e['p99'] / 1000:.2f} ms")
    device = stats.get("device")
    if device:
        reported = device.get("timestamp_latency_us")
        lines.append(f"  device {device['host_api']}, {device['mode']}"
                     + (f", reported latency {reported / 1000:.2f} ms" if reported else "")
                     + f", in flight at stop {stats.get('in_flight', 0)}")
        gaps = device.get("discontinuities") or []
        if gaps:
            lost = sum(g["blocks_lost"] for g in gaps)
            seconds = sum(g["duration_s"] for g in gaps)
            lines.append(f"  device lost and reconnected {len(gaps)} time(s): {lost} blocks "
                         f"({seconds:.2f} s) missing")
    return "\n".join(lines)


# -- batch ---------------------------------------------------------------------------------------

def cmd_batch(args) -> int:
    """`remotemedia batch`: run the manifest over every input in simulated time on a process
    pool or, with --ray, as Ray tasks; reports and events go under --out. Prints the summary
    on stderr (with --json also as the last line of stdout) and returns the batch's exit
    code: 0 all inputs ok, 1 some failed, 130/143 when stopped by SIGINT/SIGTERM. A bare
    --ray followed by an input is read as that input."""
    from .batch import format_summary, run_batch

    address, inputs = args.ray, list(args.inputs)
    if address and (os.path.exists(address) or any(c in address for c in "*?[")
                    or address.startswith("@")):
        # `--ray a.wav b.wav`: the value argparse gave --ray is an input, not an address.
        inputs.insert(0, address)
        address = ""
    result = run_batch(args.manifest, inputs, args.out, workers=args.workers,
                       use_ray=args.ray is not None, ray_address=address or None,
                       allow_import=tuple(args.allow_import))
    summary = result.summary
    print(format_summary(summary), file=sys.stderr)
    _note(f"batch: summary in {os.path.join(summary['out'], 'summary.json')}")
    if args.json:
        _print_stdout(strictjson.dumps(summary))
    return result.exit_code


# -- validate, nodes, tui --------------------------------------------------------------------------

def cmd_validate(args) -> int:
    """`remotemedia validate FILE`: load and validate the manifest without running it and print
    to stdout its name, node count, audio format, node order, shape and warnings. Returns 0;
    an invalid manifest raises ManifestError (exit 2, one line on stderr)."""
    from .engine.manifest import load_manifest
    m = load_manifest(args.file, allow_import=args.allow_import)
    a = m.audio
    print(f"{args.file}: ok: '{m.name}', {len(m.nodes)} node(s), {a.sample_rate} Hz, "
          f"{a.channels} ch, {a.block_size}-sample blocks; order: {' -> '.join(m.order)}")
    print(f"shape: {m.shape}" + (
        " (no connection names input or output: roots take the input, "
        + "terminal nodes reach the output)" if m.shape == "upstream" else ""))
    if m.weak_audio:
        print(f"  {' and '.join(sorted(m.weak_audio))}: defaults (metadata.cli_defaults, else the "
              f"upstream CLI's 16 kHz mono) that a file input's own format replaces")
    if m.shape == "upstream":
        roots = [c.target for c in m.connections if c.source == "input"]
        sinks = [c.source for c in m.connections if c.target == "output"]
        print(f"  input -> {', '.join(roots)}; {', '.join(sinks)} -> output")
    for warning in m.warnings:
        print(f"warning: {warning}")
    return EXIT_OK


def cmd_convert_manifest(args) -> int:
    """`remotemedia convert-manifest FILE`: write the native form of the manifest as YAML to
    stdout or --output OUT, with the conversion notes on stderr. Returns 0; an invalid
    manifest raises ManifestError and an unwritable OUT raises UsageError (both exit 2)."""
    import yaml
    from .engine.manifest import native_document
    doc, notes = native_document(args.file, allow_import=args.allow_import)
    text = (f"# Native form of {os.path.basename(args.file)}, written by "
            f"`remotemedia convert-manifest`.\n"
            + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    for note in notes:
        _note(f"note: {note}")
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    else:
        _print_stdout(text.rstrip("\n"))
    return EXIT_OK


def cmd_nodes(args) -> int:
    """`remotemedia nodes`: print every registered node type with its description, upstream
    aliases and parameters (type, default or required, doc), or with --json one indented JSON
    array of their descriptions. Returns 0."""
    from .engine.node import registry
    described = [cls.describe() for cls in registry.types().values()]
    if args.json:
        print(strictjson.dumps(described, indent=2, default=str))
        return EXIT_OK
    aliases: dict[str, list[str]] = {}
    for d in described:
        if d.get("alias_of"):
            aliases.setdefault(d["alias_of"], []).append(d["node_type"])
    for d in described:
        fan_in = " (fan-in)" if d.get("inputs") == "many" else ""
        tags = []
        if d.get("alias_of"):
            tags.append(f"upstream name for {d['alias_of']}")
        elif d.get("upstream"):
            tags.append("upstream node")
        if aliases.get(d["node_type"]):
            tags.append(f"upstream alias: {', '.join(aliases[d['node_type']])}")
        tag = f"  [{'; '.join(tags)}]" if tags else ""
        print(f"{d['node_type']}{fan_in}: {d['description']}{tag}")
        names = {v: k for k, v in (d.get("param_aliases") or {}).items()}
        for p in d["params"]:
            default = "required" if p["required"] else f"= {p['default']!r}"
            doc = f"  {p['doc']}" if p.get("doc") else ""
            alias = f" (or {names[p['name']]})" if p["name"] in names else ""
            print(f"    {p['name']}{alias}: {p['type']} {default}{doc}")
    return EXIT_OK


def cmd_devices(args) -> int:
    """`remotemedia devices`: print the host APIs and sound devices with the defaults marked, or
    with --json one JSON array of them. Returns 0."""
    from .io.devices import format_devices, list_devices
    if args.json:
        print(strictjson.dumps([d.as_dict() for d in list_devices()], indent=2))
    else:
        print(format_devices())
    return EXIT_OK


def _has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_ps(args) -> int:
    """`remotemedia ps`: print the running streams with a monitor socket (`stream --monitor`)
    one may attach to, or with --json one JSON array; each stale socket it removed is noted
    on stderr. Returns 0."""
    from .monitor.ps import list_runs, format_runs
    runs, stale = list_runs()
    if args.json:
        print(strictjson.dumps(runs, indent=2))
    else:
        print(format_runs(runs))
    for path in stale:
        _note(f"removed a stale monitor socket: {path}")
    return EXIT_OK


def cmd_tui(args) -> int:
    """`remotemedia tui`: run the interactive TUI in this process, or hand over to
    cmd_tui_attach (--attach) or cmd_tui_spawn (--spawn). Returns the TUI's exit code (0 on a
    normal quit), 1 when Textual cannot be imported. Raises UsageError (exit 2) for --attach
    with --spawn, --keep-running without --spawn, no interactive terminal, or a bad manifest
    or SPEC."""
    if getattr(args, "attach", None) is not None:
        if args.spawn:
            raise UsageError("tui: --spawn starts a run and --attach joins one; pick one")
        return cmd_tui_attach(args)
    if getattr(args, "spawn", False):
        return cmd_tui_spawn(args)
    if getattr(args, "keep_running", False):
        raise UsageError("tui: --keep-running goes with --spawn")
    if not _has_terminal():
        # Textual would wait for keys that never come and write escape codes into the files.
        raise UsageError("tui needs an interactive terminal (stdin and stdout); use "
                         "`remotemedia stream` to run without one")
    try:
        from .app import run_app
    except ImportError as exc:
        _error(f"the TUI is not available: {exc}")
        return EXIT_FAILED
    return int(run_app(manifest=args.manifest, input_spec=args.input,
                       output_spec=args.output, mode=args.mode,
                       reconnect=args.reconnect) or 0)


# -- record, trace, arrivals on `stream`; replay, report, latency ---------------------------------

def _arrivals_clock(args, source, manifest):
    """--arrivals FILE: an ArrivalClock for an input that does not pace itself, else None."""
    if not getattr(args, "arrivals", None):
        return None
    from .replay import ArrivalClock, parse_arrivals
    if source.clocked:
        raise UsageError(f"--arrivals times an input that does not pace itself (a file, a "
                         f"generator); the input here is {source.description}")
    a = manifest.audio
    arrivals = parse_arrivals(args.arrivals, a.block_size, a.sample_rate)
    return ArrivalClock(arrivals, a.block_size / a.sample_rate, realtime=bool(args.realtime))


def _observers(args, runner, source):
    """The Recorder and the Tracer that --record and --trace ask for (each None if not)."""
    recorder = tracer = None
    if getattr(args, "record", None):
        from .engine.manifest import read_manifest_document
        from .record import Recorder
        if source.runs_schedule:
            raise UsageError("--record keeps blocks as the engine thread pushes them; with "
                             "--mode callback they are pushed in the audio callback: use "
                             "--mode queued")
        document, _ = read_manifest_document(args.manifest)
        recorder = Recorder(args.record, manifest_document=document).bind(runner)
        runner.observer = recorder
    if getattr(args, "trace", None):
        from .trace import Tracer, check_trace_path
        check_trace_path(args.trace)
        tracer = Tracer().bind(runner)
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
        except OSError as exc:
            failure = failure or RemoteMediaError(f"--trace: cannot write {args.trace}: "
                                                  f"{exc.strerror}")
    return failure


def add_observability_commands(sub) -> None:
    """Add the `replay`, `report` and `latency` commands to the subparsers `sub`."""
    p = sub.add_parser("replay", help="re-run a recording (stream --record DIR) through its "
                                      "manifest or another, in simulated time",
                       description="Replay the input a `stream --record DIR` run kept, with its "
                                   "recorded arrival times, and compare the output and events "
                                   "with the recording's.")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--manifest", "-m", metavar="FILE",
                   help="run this manifest instead of the recorded one")
    p.add_argument("--output", "-o", metavar="SPEC", help="also send the audio here")
    p.add_argument("--realtime", action="store_true",
                   help="wait for each recorded arrival time (default: simulated time)")
    p.add_argument("--compare", metavar="OTHER",
                   help="also run manifest OTHER and print both side by side")
    p.add_argument("--trace", metavar="FILE", help="write a Chrome trace-event JSON")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--allow-import", action="append", default=[], metavar="MODULE")
    p.set_defaults(command=cmd_replay)

    p = sub.add_parser("report", help="HTML page and PNG figures of a recording or a saved "
                                      "--json report")
    p.add_argument("source", metavar="DIR_OR_JSON")
    p.add_argument("--out", metavar="DIR",
                   help="where to write report.html and the figures (default: DIR/report, or "
                        "NAME-report beside a JSON file)")
    p.set_defaults(command=cmd_report)

    p = sub.add_parser("latency", help="measure the round trip from an output device to an "
                                       "input device with a click train")
    p.add_argument("--input", "-i", default="default", metavar="DEVICE",
                   help="input device name or index (default: the system default)")
    p.add_argument("--output", "-o", default="default", metavar="DEVICE",
                   help="output device name or index (default: the system default)")
    p.add_argument("--duration", "-d", type=parse_duration, default=4.0, metavar="S",
                   help="seconds of click train (default: %(default)s)")
    p.add_argument("--rate", type=int, default=48000, help="sample rate (default: 48000)")
    p.add_argument("--block-size", type=int, default=960, help="frames per callback (960)")
    p.add_argument("--jack-loopback", action="store_true",
                   help="under JACK: connect this stream's output port to its input port "
                        "(and away from the system ports) with jack_connect")
    p.add_argument("--seed", type=int, default=1, help="seed of the click spacing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(command=cmd_latency)


def cmd_replay(args) -> int:
    """`remotemedia replay DIR`: re-run a `stream --record DIR` recording through its manifest
    (or --manifest) in simulated time (or --realtime), compare the output and events with the
    recorded ones, optionally run --compare OTHER beside it and write --trace. Prints the
    comparison to stdout, or with --json to stderr with the result as one JSON line on
    stdout. Returns 0; an unreadable recording or bad manifest raises
    UsageError/ManifestError (exit 2), a failure while replaying its RemoteMediaError (exit
    1)."""
    from .record import Recording
    from .replay import (audio_difference, compare_results, event_differences,
                         format_comparison, replay)
    rec = Recording(args.directory)
    tracer = None
    if args.trace:
        from .trace import Tracer, check_trace_path
        check_trace_path(args.trace)
        tracer = Tracer()
    first = replay(rec, manifest=args.manifest, output=args.output, realtime=args.realtime,
                   allow_import=args.allow_import, tracer=tracer)
    if tracer is not None:
        tracer.write(args.trace)
    recorded = rec.output()
    result = {"replay": first.stats, "speed_x_realtime": round(first.speed, 3),
              "blocks": rec.blocks, "missing_blocks": rec.missing_blocks}
    if recorded is not None:
        out, rate = recorded
        result["vs_recording"] = {
            "output": audio_difference(out, first.output) if rate == first.rate
            else {"sample_rates": [rate, first.rate], "identical": False},
            "events": event_differences(rec.events, first.events)}
    lines = [f"{PROG}: replayed {rec.blocks} blocks of {rec.path} through {first.manifest} in "
             f"{first.seconds:.3f} s ({first.speed:.1f}x real time)"]
    if result["missing_blocks"]:
        lines.append(f"  the recording misses {result['missing_blocks']} block(s) its writer "
                     f"could not keep: the replay runs without them")
    if "vs_recording" in result:
        o, e = result["vs_recording"]["output"], result["vs_recording"]["events"]
        if o.get("identical"):
            lines.append("  output: identical to the recorded output, bit for bit")
        elif "sample_rates" in o:
            lines.append(f"  output: at {first.rate} Hz, the recording's at {o['sample_rates'][0]}"
                         f" Hz")
        else:
            snr = "inf" if o.get("snr_db") is None else f"{o['snr_db']:.2f}"
            lines.append(f"  output: differs from the recorded output from frame "
                         f"{o.get('first_difference')} (peak difference "
                         f"{o.get('peak_difference', 0):.3g}, SNR {snr} dB)")
        lines.append("  events: identical to the recorded events" if e["count"] == 0 else
                     f"  events: {e['count']} differ from the recorded events "
                     f"({e['events'][0]} recorded, {e['events'][1]} replayed)")
    if args.compare:
        second = replay(rec, manifest=args.compare, allow_import=args.allow_import)
        cmp = compare_results(first, second)
        result["compare"] = cmp
        lines.append(format_comparison(cmp))
    print("\n".join(lines), file=sys.stdout if not args.json else sys.stderr)
    if args.json:
        _print_stdout(strictjson.dumps(result))
    return EXIT_OK


def cmd_report(args) -> int:
    """`remotemedia report DIR|REPORT.json`: write report.html and the PNG figures (to --out,
    default DIR/report or NAME-report beside the JSON) and name the HTML file on stderr.
    Returns 0; a source that is neither a recording nor a saved report raises UsageError
    (exit 2)."""
    from .report import write_report
    html = write_report(args.source, args.out)
    _note(f"report: {html}")
    return EXIT_OK


def cmd_latency(args) -> int:
    """`remotemedia latency`: play a click train on the output device, record the input device
    in one duplex stream and print the measured round trip (or with --json one JSON line).
    Returns 0 when the clicks were found, 1 when not; a device that cannot open raises
    DeviceError (exit 2 for a name that matches none) and bad numbers raise UsageError (exit
    2)."""
    from .latency import format_latency, measure_latency
    result = measure_latency(args.input, args.output, duration=args.duration,
                             sample_rate=args.rate, block_size=args.block_size,
                             jack_loopback=args.jack_loopback, seed=args.seed)
    if args.json:
        _print_stdout(strictjson.dumps(result))
    else:
        print(format_latency(result))
    return EXIT_OK if result["found"] else EXIT_FAILED


def cmd_tui_attach(args) -> int:
    """`tui --attach [PATH|PID]`: the TUI over a run in another process (its --monitor)."""
    if args.manifest or args.input or args.output or args.mode:
        raise UsageError("tui --attach watches a run that is already going; --manifest, "
                         "--input, --output and --mode belong to the run (`stream`)")
    from .monitor.client import MonitorClient
    client = MonitorClient.attach(args.attach or None)   # UsageError before the screen changes
    if not _has_terminal():
        client.close()
        raise UsageError("tui needs an interactive terminal (stdin and stdout)")
    try:
        from .tui.attached import run_attached
    except ImportError as exc:
        client.close()
        _error(f"the TUI is not available: {exc}")
        return EXIT_FAILED
    return int(run_attached(client) or 0)


SPAWN_TIMEOUT_S = 15.0


def cmd_tui_spawn(args) -> int:
    """`tui --spawn`: `remotemedia stream --monitor` in a child process of its own session
    (a crash of the TUI leaves it running), then the attached TUI over it. q stops the run
    (waits for it to write its report) unless --keep-running. The child's stderr and report go
    to a log file beside its socket, named in the last line."""
    import subprocess
    import time
    from .monitor import protocol
    from .monitor.client import MonitorClient
    if not _has_terminal():
        raise UsageError("tui needs an interactive terminal (stdin and stdout); use "
                         "`remotemedia stream` to run without one")
    if not args.manifest:
        raise UsageError("tui --spawn needs --manifest FILE (the picker works in-process only)")
    from .engine.session import Pipeline
    Pipeline.from_manifest(args.manifest)           # a bad manifest: one line, exit 2, now
    folder = protocol.runtime_dir()
    log_path = folder / f"spawned-{os.getpid()}.log"
    argv = [sys.executable, "-m", "remotemedia", "stream", "--manifest", args.manifest,
            "--input", args.input or "default", "--output", args.output or "default",
            "--realtime", "--json", "--events", os.devnull, "--monitor"]
    if args.mode:
        argv += ["--mode", args.mode]
    with open(log_path, "wb") as log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
    path = folder / f"{child.pid}{protocol.SUFFIX}"
    deadline = time.monotonic() + SPAWN_TIMEOUT_S
    while not (path.exists() and protocol.socket_listening(path)):
        if child.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
            _error(f"the run did not start: {tail[0] if tail else 'no output'}")
            return child.returncode if child.returncode in (EXIT_USAGE, EXIT_FAILED) \
                else EXIT_FAILED
        if time.monotonic() > deadline:
            child.terminate()
            child.wait(5)
            _error(f"the run did not open its monitor socket within {SPAWN_TIMEOUT_S:g} s "
                   f"(its log: {log_path})")
            return EXIT_FAILED
        time.sleep(0.05)
    client = MonitorClient.attach(str(path))
    from .tui.attached import run_attached
    try:
        rc = int(run_attached(client, owns_run=not args.keep_running) or 0)
    except BaseException:
        # A crash of the TUI is not the run's: it goes on, and says where to find it.
        _note(f"the TUI failed; the run goes on as PID {child.pid}: `{PROG} tui --attach "
              f"{child.pid}` (its log: {log_path})")
        raise
    if args.keep_running:
        _note(f"the run goes on as PID {child.pid}: `{PROG} tui --attach {child.pid}`; its "
              f"log: {log_path}")
        return rc
    try:
        child.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.terminate()
        child.wait(STOP_TIMEOUT_S)
    _note(f"the run ended with exit code {child.returncode}; its report: {log_path}")
    return rc or (child.returncode if child.returncode not in (None, 0) else 0)


STOP_TIMEOUT_S = 10.0
