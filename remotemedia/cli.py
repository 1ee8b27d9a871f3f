"""The `remotemedia` command: argument parsing, and each command a thin function over the engine.

    remotemedia stream --manifest FILE [--input SPEC] [--output SPEC] [--duration S]
                       [--realtime | --fast] [--json] [--strict] [--events FILE]
                       [--allow-import MODULE ...] [--mode queued|callback] [--reconnect]
    remotemedia validate FILE
    remotemedia nodes [--json]
    remotemedia devices [--json]
    remotemedia tui [--manifest FILE] [--input SPEC] [--output SPEC] [--no-reconnect]

Exit codes: 0 success, 1 failure while running, 2 bad input (arguments, SPEC, manifest, file),
130 after SIGINT and 143 after SIGTERM (the report is printed and files are finalized first).
A RemoteMediaError or bad input is one line on stderr, never a traceback.

stdout carries data only: events (one JSON object per line), then with --json the stats report
as the last line. Everything for people (start line, live status, summary) goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import traceback

import numpy as np

from .engine.errors import RemoteMediaError, UsageError

PROG = "remotemedia"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
STOP_REASON = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
STATUS_INTERVAL_S = 0.25


# -- entry point -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.command(args)
    except RemoteMediaError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_SIGNAL[signal.SIGINT]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 through UsageError."""

    def error(self, message: str):
        command = self.prog[len(PROG):].strip()
        raise UsageError(f"{command + ': ' if command else ''}{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--reconnect", action="store_true",
                   help="when a sound device or its server goes away, wait for it to come back "
                        "and carry on (the gap is reported as a discontinuity) instead of "
                        "ending the run with exit code 1")
    p.set_defaults(command=cmd_stream)

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

    p = sub.add_parser("tui", help="the interactive terminal UI")
    p.add_argument("--manifest", "-m", metavar="FILE")
    p.add_argument("--input", "-i", metavar="SPEC")
    p.add_argument("--output", "-o", metavar="SPEC")
    add_mode_argument(p)
    p.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=True,
                   help="when a sound device or its server goes away, wait for it and carry on "
                        "(default), or end the run (--no-reconnect)")
    p.set_defaults(command=cmd_tui)
    return parser


def add_mode_argument(p) -> None:
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


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


# -- stream ----------------------------------------------------------------------------------------

def cmd_stream(args) -> int:
    from .engine.session import Pipeline
    from .io.spec import make_sink, make_source
    from .runner import StreamRunner

    if args.json and args.output.strip() == "raw:-":
        raise UsageError("--json prints the report on stdout, which --output raw:- uses for "
                         "audio; drop one of them")
    pipeline = Pipeline.from_manifest(args.manifest, allow_import=args.allow_import)
    manifest = pipeline.manifest
    input_spec, output_spec = args.input, args.output
    if args.realtime is False:
        # --fast is simulated time, which only the virtual device can keep: `default` is it.
        input_spec = "virtual" if input_spec.strip() == "default" else input_spec
        output_spec = "virtual" if output_spec.strip() == "default" else output_spec
    source = make_source(input_spec, manifest.audio, mode=args.mode)
    if args.mode == "callback" and not getattr(source, "runs_schedule", False):
        raise UsageError(f"--mode callback runs the graph in the input device's audio "
                         f"callback; the input here is {source.description}, not a device")
    sink = make_sink(output_spec, manifest.output_format)
    if args.realtime is False and (source.clocked or sink.clocked):
        raise UsageError("--fast cannot hurry a sound device, which plays and records in real "
                         "time; use a file, a generator or the virtual device")
    _refuse_same_file(source, sink)
    _watch_devices(source, sink, args.reconnect)
    sink_on_stdout = getattr(sink, "uses_stdout", False)
    events = _open_events(args.events, sink_on_stdout)
    runner = StreamRunner(pipeline, source, sink, realtime=args.realtime,
                          duration=args.duration, strict=args.strict, on_event=events)
    events.flush_each = runner.realtime
    signals = _SignalStop(runner)
    status = _StatusLine(runner, sys.stderr) if sys.stderr.isatty() else None
    failure: BaseException | None = None
    signals.install()  # before anything is said: from here on a signal means a clean stop
    try:
        _note(_start_line(manifest, source, sink, runner, args.duration))
        if not runner.realtime and args.duration is None and getattr(source, "endless", False):
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
    if stats is not None:
        if signals.received is not None:
            stats["stop_reason"] = STOP_REASON[signals.received]
        print(format_summary(stats, manifest.name), file=sys.stderr)
        if args.json:
            _print_stdout(json.dumps(stats))
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


def _watch_devices(source, sink, reconnect: bool) -> None:
    """Device ends say at once when their device is lost or back (one line on stderr), and with
    --reconnect wait for a lost device instead of failing."""
    for end in (source, sink):
        if hasattr(end, "reconnect"):
            end.reconnect = reconnect
            end.on_notice = _note


def _refuse_same_file(source, sink) -> None:
    # Opening the output truncates it: the input would be read back as silence or garbage.
    src, dst = getattr(source, "path", None), getattr(sink, "path", None)
    if src is not None and dst is not None and dst.exists() and os.path.samefile(src, dst):
        raise UsageError(f"input and output are the same file: {src}")


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
        self.count = 0
        self._warned = False

    def __call__(self, data) -> None:
        self.count += 1
        if self.stream is None:
            if not self._warned:
                self._warned = True
                _note("events are not written: stdout carries raw audio (use --events FILE)")
            return
        line = json.dumps(event_record(data), default=_json_default)
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


def event_record(data) -> dict:
    kind = data.kind
    pts = getattr(data, "pts", None)
    if kind == "json":
        if isinstance(data.value, dict):
            return data.value
        return {"type": "json", "pts": pts, "value": data.value}
    if kind == "text":
        return {"type": "text", "pts": pts, "text": data.text}
    if kind == "control":
        return {"type": "control", "pts": pts, "event": data.event}
    if kind == "binary":
        return {"type": "binary", "pts": pts, "bytes": len(data.data)}
    return {"type": kind, "pts": pts}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        from .engine.serialization import record_encode
        record_encode(value, "json")  # an array in an event is a serialization: count it
        return value.tolist()
    return str(value)


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


# -- validate, nodes, tui --------------------------------------------------------------------------

def cmd_validate(args) -> int:
    from .engine.manifest import load_manifest
    m = load_manifest(args.file, allow_import=args.allow_import)
    a = m.audio
    print(f"{args.file}: ok: '{m.name}', {len(m.nodes)} node(s), {a.sample_rate} Hz, "
          f"{a.channels} ch, {a.block_size}-sample blocks; order: {' -> '.join(m.order)}")
    return EXIT_OK


def cmd_nodes(args) -> int:
    from .engine.node import registry
    described = [cls.describe() for cls in registry.types().values()]
    if args.json:
        print(json.dumps(described, indent=2, default=str))
        return EXIT_OK
    for d in described:
        fan_in = " (fan-in)" if d.get("inputs") == "many" else ""
        print(f"{d['node_type']}{fan_in}: {d['description']}")
        for p in d["params"]:
            default = "required" if p["required"] else f"= {p['default']!r}"
            doc = f"  {p['doc']}" if p.get("doc") else ""
            print(f"    {p['name']}: {p['type']} {default}{doc}")
    return EXIT_OK


def cmd_devices(args) -> int:
    from .io.devices import format_devices, list_devices
    if args.json:
        print(json.dumps([d.as_dict() for d in list_devices()], indent=2))
    else:
        print(format_devices())
    return EXIT_OK


def cmd_tui(args) -> int:
    try:
        from .app import run_app
    except ImportError as exc:
        _error(f"the TUI is not available: {exc}")
        return EXIT_FAILED
    return int(run_app(manifest=args.manifest, input_spec=args.input,
                       output_spec=args.output, mode=args.mode,
                       reconnect=args.reconnect) or 0)
