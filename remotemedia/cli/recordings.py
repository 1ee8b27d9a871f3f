"""`remotemedia replay`, `report` and `latency`: recorded runs re-run, shown, and the
device's round trip measured.
"""

from __future__ import annotations

import sys

from ..engine import strictjson
from ..engine.errors import RemoteMediaError, UsageError
from ..engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE
from .common import (EXIT_FAILED, EXIT_OK, EXIT_SIGNAL, PROG, STOP_REASON, _error, _note,
                     _print_stdout, add_json_argument,
                     add_manifest_arguments, add_trace_argument, parse_block_size,
                     parse_duration, parse_rate, parse_seed)


def add_observability_commands(sub) -> None:
    """Add the `replay`, `report` and `latency` commands to the subparsers `sub`."""
    p = sub.add_parser("replay", help="re-run a recording (stream or converse --record DIR) "
                                      "through its manifest or another, in simulated time",
                       description="Replay the input a `stream --record DIR` run kept, with its "
                                   "recorded arrival times, and compare the output and events "
                                   "with the recording's. A `converse --record DIR` "
                                   "conversation is re-run with its recorded node costs and "
                                   "compared block for block, event for event and turn for "
                                   "turn. Exit 0 when the replay is identical to the "
                                   "recording, 1 when it differs (as cmp and diff), 2 for bad "
                                   "input, 130/143 when SIGINT/SIGTERM stopped it.")
    p.add_argument("directory", metavar="DIR")
    add_manifest_arguments(p, help="run this manifest instead of the recorded one")
    p.add_argument("--output", "-o", metavar="SPEC", help="also send the audio here")
    p.add_argument("--realtime", action="store_true",
                   help="wait for each recorded arrival time (default: simulated time)")
    p.add_argument("--compare", metavar="OTHER",
                   help="also run manifest OTHER and print both side by side")
    add_trace_argument(p)
    add_json_argument(p, "print the result as one JSON object")
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
    p.add_argument("--rate", type=parse_rate, default=DEFAULT_SAMPLE_RATE,
                   help=f"sample rate (default: {DEFAULT_SAMPLE_RATE})")
    p.add_argument("--block-size", type=parse_block_size, default=DEFAULT_BLOCK_SIZE,
                   help=f"frames per callback ({DEFAULT_BLOCK_SIZE})")
    p.add_argument("--jack-loopback", action="store_true",
                   help="under JACK: connect this stream's output port to its input port "
                        "(and away from the system ports) with jack_connect")
    p.add_argument("--seed", type=parse_seed, default=1,
                   help="seed of the click spacing (a whole number >= 0)")
    add_json_argument(p, "print the result as JSON")
    p.set_defaults(command=cmd_latency)


def _check_replay_paths(args) -> None:
    """Refuse (exit 2, nothing opened) a replay whose --output or --trace is a file it reads:
    the recording's own files, --manifest, --compare, an --allow-import module."""
    from ..engine.errors import UsageError
    from ..engine.node import AudioFormat
    from ..io.spec import make_sink
    from .paths import _named, _recording_files, check_paths, manifest_reads
    writes = _named("--trace", args.trace)
    if args.output:
        try:   # only its file name is wanted here: the replay makes the real sink
            writes = make_sink(args.output, AudioFormat(DEFAULT_SAMPLE_RATE, 1,
                                                        DEFAULT_BLOCK_SIZE)).writes() + writes
        except UsageError:
            pass   # the replay refuses the SPEC itself, with the recording's format
    reads = [("the recording's", path) for _, path in _recording_files(args.directory)]
    check_paths(reads=reads + _named("--manifest", args.manifest)
                + _named("--compare", args.compare)
                + manifest_reads(None, args.allow_import), writes=writes)


def cmd_replay(args) -> int:
    """`remotemedia replay DIR`: re-run a `stream --record DIR` recording through its manifest
    (or --manifest) in simulated time (or --realtime), compare the output and events with the
    recorded ones, optionally run --compare OTHER beside it and write --trace; a `converse
    --record DIR` recording is re-run as _replay_conversation says. Prints the comparison to
    stdout, or with --json to stderr with the result as one JSON line on stdout. Returns 0
    when the replay is identical to the recording, 1 when it differs (one line on stderr
    saying how), 130/143 when SIGINT/SIGTERM stopped it (--output and --trace hold the blocks
    replayed; nothing compared); an unreadable recording or bad manifest raises
    UsageError/ManifestError (exit 2), a failure while replaying its RemoteMediaError (exit
    1)."""
    from ..conversation_record import is_conversation_recording
    from ..stop_signals import StopSignals
    runners: list = []

    def on_stop(signum: int) -> None:
        for runner in runners:
            runner.stop(STOP_REASON[signum])
    signals = StopSignals(on_stop)
    signals.install()
    try:
        if is_conversation_recording(args.directory):
            return _replay_conversation(args, signals)
        return _replay_stream(args, signals, runners)
    finally:
        signals.restore()


def _replay_stream(args, signals, runners: list) -> int:
    """cmd_replay of a stream recording; `runners` gets each replay's StreamRunner for the
    signal handler to stop."""
    from ..recording import Recording
    from ..replay import (audio_difference, compare_results, describe_output,
                          event_differences, format_comparison, mismatch, replay)
    rec = Recording(args.directory)
    _check_replay_paths(args)
    if args.compare:
        # refuse a bad --compare manifest now, before --output or --trace is written
        from ..engine.session import Pipeline
        Pipeline.from_manifest(args.compare, allow_import=args.allow_import)
    tracer = None
    if args.trace:
        from ..trace import Tracer, check_trace_path
        check_trace_path(args.trace)
        tracer = Tracer()
        tracer.open(args.trace)      # refused now, not after the replay ran

    def on_runner(runner) -> None:
        runners.append(runner)
        if signals.received is not None:   # a signal before the runner existed
            runner.stop(STOP_REASON[signals.received])
    try:
        first = replay(rec, manifest=args.manifest, output=args.output, realtime=args.realtime,
                       allow_import=args.allow_import, tracer=tracer, on_runner=on_runner)
    except BaseException:
        if tracer is not None:     # the file is made: it holds what was traced, as stream's
            try:
                tracer.write(args.trace)
            except (RemoteMediaError, OSError):
                pass               # the replay's own error is the one to report
        raise
    if tracer is not None:
        tracer.write(args.trace)
    result = {"replay": first.stats, "speed_x_realtime": round(first.speed, 3),
              "blocks": rec.blocks, "missing_blocks": rec.missing_blocks}
    if signals.received is not None:
        reason = STOP_REASON[signals.received]
        result.update(stop_reason=reason, blocks_replayed=first.blocks)
        print(f"{PROG}: replay of {rec.path} stopped ({reason}) after {first.blocks} of "
              f"{rec.blocks} blocks: not compared with the recording",
              file=sys.stdout if not args.json else sys.stderr)
        if args.json:
            _print_stdout(strictjson.dumps(result))
        return EXIT_SIGNAL[signals.received]
    recorded = rec.output()
    replayed_out, replayed_events = first.output, first.events
    if rec.cut is not None:
        result["cut"] = dict(rec.cut)
    if recorded is not None:
        out, rate = recorded
        if rec.cut is not None:
            # compare only what the recording kept: the output up to where it ends (the replay
            # also flushes what nodes hold at the end, which the cut run never did), the events
            # of the blocks kept
            n = min(out.shape[0], first.frames_before_final)
            out, replayed_out = out[:n], replayed_out[:n]
            last = rec.cut["last_seq"]
            replayed_events = [e for e in replayed_events
                               if isinstance(e.get("seq"), int) and e["seq"] <= last]
        result["vs_recording"] = {
            "output": audio_difference(out, replayed_out) if rate == first.rate
            else {"sample_rates": [rate, first.rate], "identical": False},
            "events": event_differences(rec.events, replayed_events)}
        differs = mismatch(**result["vs_recording"])
        result["identical"] = not differs
    lines = [f"{PROG}: replayed {rec.blocks} blocks of {rec.path} through {first.manifest} in "
             f"{first.seconds:.3f} s ({first.speed:.1f}x real time)"]
    if rec.cut is not None:
        cut = rec.cut
        lines.append(f"  the recording was cut: {cut['reason']}; it ends after block "
                     f"{cut['last_seq']} ({cut['time_s']:.3f} s): compared the "
                     f"{cut['blocks']} blocks it kept")
    if result["missing_blocks"]:
        lines.append(f"  the recording misses {result['missing_blocks']} block(s) its writer "
                     f"could not keep: the replay runs without them")
    if "vs_recording" in result:
        o, e = result["vs_recording"]["output"], result["vs_recording"]["events"]
        lines.append(describe_output(o))
        lines.append("  events: identical to the recorded events" if e["count"] == 0 else
                     f"  events: {e['count']} differ from the recorded events "
                     f"({e['events'][0]} recorded, {e['events'][1]} replayed)")
    if args.compare:
        second = replay(rec, manifest=args.compare, allow_import=args.allow_import,
                        on_runner=on_runner)
        if signals.received is None:
            cmp = compare_results(first, second)
            result["compare"] = cmp
            from ..media_time import TimeBase
            lines.append(format_comparison(cmp, TimeBase.of(rec)))
    if signals.received is not None:
        # stopped while --compare ran: the verdict on the recording stands, no comparison
        reason = STOP_REASON[signals.received]
        result["stop_reason"] = reason
        lines.append(f"  --compare {args.compare}: stopped ({reason}), not compared")
    print("\n".join(lines), file=sys.stdout if not args.json else sys.stderr)
    if args.json:
        _print_stdout(strictjson.dumps(result))
    if signals.received is not None:
        return EXIT_SIGNAL[signals.received]
    if result.get("identical") is False:
        _error(f"replay {rec.path}: differs from the recording: {differs}")
        return EXIT_FAILED
    return EXIT_OK


def _replay_conversation(args, signals) -> int:
    """`replay DIR` of a `converse --record DIR` recording (conversation_record.py): re-run in
    simulated time with the recorded costs and compared (exit 0 identical, 1 not, 130/143
    stopped by a signal); the stream replay's options do not apply (one-line UsageError)."""
    from ..conversation_record import format_replay, replay_conversation
    from ..replay import mismatch
    for flag, given in (("--manifest", args.manifest), ("--output", args.output),
                        ("--realtime", args.realtime), ("--compare", args.compare),
                        ("--trace", args.trace)):
        if given:
            raise UsageError(f"replay {args.directory}: a conversation recording replays as "
                             f"it was recorded; {flag} is for stream recordings")
    result = replay_conversation(
        args.directory, allow_import=args.allow_import,
        stopped=lambda: None if signals.received is None else STOP_REASON[signals.received])
    print(format_replay(args.directory, result), file=sys.stdout if not args.json
          else sys.stderr)
    if args.json:
        _print_stdout(strictjson.dumps(result))
    if "stop_reason" in result:
        return EXIT_SIGNAL[signals.received]
    if not result["identical"]:
        why = mismatch(result["output"], result["events"], result["turns"],
                       result.get("input"))
        _error(f"replay {args.directory}: differs from the recording: {why}")
        return EXIT_FAILED
    return EXIT_OK


def cmd_report(args) -> int:
    """`remotemedia report DIR|REPORT.json`: write report.html and the PNG figures (to --out,
    default DIR/report or NAME-report beside the JSON) and name the HTML file on stderr.
    Returns 0; a source that is neither a recording nor a saved report raises UsageError
    (exit 2)."""
    from ..report_figures import write_report
    html = write_report(args.source, args.out)
    _note(f"report: {html}")
    return EXIT_OK


def cmd_latency(args) -> int:
    """`remotemedia latency`: play a click train on the output device, record the input device
    in one duplex stream and print the measured round trip (or with --json one JSON line).
    Returns 0 when the clicks were found, 1 when not, 130/143 when SIGINT/SIGTERM ended the
    train early (the clicks played until then measured, `stop_reason` in the JSON); a device that cannot open raises
    DeviceError (exit 2 for a name that matches none) and bad numbers raise UsageError (exit
    2)."""
    import threading
    from ..latency import format_latency, measure_latency
    from ..stop_signals import StopSignals
    stop = threading.Event()
    signals = StopSignals(lambda signum: stop.set())
    signals.install()
    try:
        result = measure_latency(args.input, args.output, duration=args.duration,
                                 sample_rate=args.rate, block_size=args.block_size,
                                 jack_loopback=args.jack_loopback, seed=args.seed, stop=stop)
    finally:
        signals.restore()
    if signals.received is not None:
        result["stop_reason"] = STOP_REASON[signals.received]
    if args.json:
        _print_stdout(strictjson.dumps(result))
    else:
        print(format_latency(result))
    if signals.received is not None:
        return EXIT_SIGNAL[signals.received]
    return EXIT_OK if result["found"] else EXIT_FAILED
