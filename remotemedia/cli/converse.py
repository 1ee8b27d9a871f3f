"""`remotemedia converse`: a scripted user against a voice manifest, in simulated time, or
live on a JACK server with --realtime (remotemedia.converse_live)."""

from __future__ import annotations

import json
import os
import sys

from ..engine.errors import UsageError
from . import common
from .common import (EXIT_FAILED, EXIT_OK, EXIT_SIGNAL, STOP_REASON, _print_stdout,
                     add_json_argument, add_manifest_arguments, parse_seed)
from .paths import _named, check_paths, manifest_reads


def add_converse_parser(sub) -> None:
    """Add the `converse` command to the subparsers `sub`."""
    p = sub.add_parser(
        "converse", help="a scripted conversation with a voice manifest, in simulated time "
                         "(or live with --realtime)",
        description="Play a scripted user (say: TEXT spoken by espeak-ng, or play: FILE.wav) "
                    "against a voice manifest in simulated time, every node's compute charged "
                    "to the clock, and measure each turn from the audio: what was heard (WER), "
                    "the reply, voice-to-voice latency with its per-node breakdown, barge-in "
                    "stop time; with --realtime, live on devices of a JACK server, measured "
                    "from the captured audio. Exit 1 when an expectation fails, 2 for bad "
                    "input, 130/143 when SIGINT/SIGTERM stopped it (the turns so far "
                    "reported).")
    add_manifest_arguments(p, required=True)
    p.add_argument("--script", "-s", required=True, metavar="FILE",
                   help="(- reads it from stdin) YAML: {turns: [{say|play, after_ms, "
                        "barge_in_after_ms, expect}], "
                        "room: {echo_delay_ms, echo_gain_db, rt60_ms, noise: {kind, snr_db}, "
                        "seed}}")
    add_json_argument(p, "print the whole report as JSON on the last line of stdout")
    p.add_argument("--seed", type=parse_seed, default=0, metavar="N",
                   help="seed of the user's noise floor, a whole number >= 0 (default 0)")
    p.add_argument("--timing", default="measured", metavar="measured|FILE",
                   help="node costs: measured on this machine (default), or a cost file from "
                        "--save-timing (then two runs give the same report but wall_s; a "
                        "--realtime run's file charges its Whisper runs and device path, the "
                        "rest measured)")
    p.add_argument("--save-timing", metavar="FILE",
                   help="write the per-node costs this run charged, for --timing FILE (with "
                        "--realtime: its model runs and device path, to simulate it like for "
                        "like)")
    p.add_argument("--record", metavar="DIR",
                   help="keep the conversation in a new folder DIR (what the bot heard and "
                        "played, its events, the report, the costs charged) for "
                        "`remotemedia replay DIR`, which re-runs it bit for bit")
    p.add_argument("--realtime", action="store_true",
                   help="run live on sound devices of a JACK server instead of in simulated "
                        "time: the user's side plays the turns into --input and records "
                        "--output; turn times come from the captured audio")
    p.add_argument("--loopback", action="store_true",
                   help="with --realtime: also connect the graph's output back into its input "
                        "(a loudspeaker the microphone hears, at unity gain on the JACK "
                        "server): the bot hears its own voice, as an echo canceller must")
    p.add_argument("--input", "-i", metavar="DEV",
                   help="with --realtime: the graph's input device (device:NAME_OR_INDEX)")
    p.add_argument("--output", "-o", metavar="DEV",
                   help="with --realtime: the graph's output device (device:NAME_OR_INDEX)")
    p.set_defaults(command=cmd_converse)


def cmd_converse(args) -> int:
    """Run the conversation; a summary on stderr (none with -q), the report with --json; exit
    1 on a failed expectation, 2 for bad input (nothing written), 130/143 when SIGINT/SIGTERM
    stopped it (the turns so far reported, `stop_reason` in the JSON)."""
    from ..conversation import ConversationRun
    Conversation = ConversationRun
    if args.manifest == "-" and args.script == "-":
        raise UsageError("--manifest - and --script -: only one of them can read stdin")
    if args.manifest == "-":
        common.resolve_manifest(args)
    record = getattr(args, "record", None)
    if record:
        from ..conversation_record import check_record_dir, recording_run
        if args.realtime:
            raise UsageError("--record keeps a simulated-time conversation; a --realtime run "
                             "cannot be replayed bit for bit")
        check_record_dir(record)   # before minutes of work, and before anything is written
        Conversation = recording_run   # the run that keeps what replay needs
    if args.realtime:
        conv, report, received = _stoppable(lambda: _live(args))
    else:
        if args.input or args.output or args.loopback:
            raise UsageError("--input, --output and --loopback go with --realtime (a live run "
                             "on devices)")
        conv, report, received = _simulated(args, Conversation)
        if record:
            from ..conversation_record import write_recording
            from ..engine.manifest import read_manifest_document
            summary = write_recording(record, conv, read_manifest_document(args.manifest)[0])
            report["recording"] = summary
            if not common.QUIET:
                print(f"recorded {summary['blocks_recorded']} blocks and {summary['events']} "
                      f"events to {record} (replay: remotemedia replay {record})",
                      file=sys.stderr)
    if args.save_timing:
        # a live run's file holds its model runs and device path (the rest is measured
        # again); a simulated run's, every call's cost
        (conv.save_timing if args.realtime else conv.costs.save)(args.save_timing)
    say = (lambda line: None) if common.QUIET else (lambda line: print(line, file=sys.stderr))
    for i, t in enumerate(report["turns"], 1):
        v2v = "-" if t["voice_to_voice_ms"] is None else f"{t['voice_to_voice_ms']:.0f} ms"
        parts = ", ".join(f"{k} {v:.0f}" for k, v in (t["breakdown_ms"] or {}).items())
        parts = f" ({parts})" if parts else ""
        stop = "" if t["barge_in_stop_ms"] is None else \
            f"; barge-in stop {t['barge_in_stop_ms']:.0f} ms"
        echo = "" if "erle_db" not in t else (
            f"; ERLE {_fig(t['erle_db'], 'dB')}, residual echo "
            f"{_fig(t['residual_echo_dbfs'], 'dBFS')}, self-interruptions "
            f"{t['self_interruptions']}, double talk {_fig(t['double_talk_s'], 's')}")
        say(f"turn {i}: said {t['user']!r} heard {t['heard']!r} (WER {_fig(t['wer'])}) -> "
            f"{t['reply']!r}; voice-to-voice {v2v}{parts}{stop}{echo}")
    room = report.get("room")
    if room is not None and "convergence_s" not in room:
        # live: no simulated room to measure against, so the canceller's own figures
        say(f"echo canceller: ERLE {_fig(room.get('erle_after_convergence_db'), 'dB')} after "
            f"convergence at {_fig(room.get('converged_at_s'), 's')} (echo ERLE "
            f"{_fig(room.get('echo_erle_after_convergence_db'), 'dB')}), residual echo "
            f"{_fig(room.get('residual_echo_dbfs'), 'dBFS')}, delay "
            f"{_fig(room.get('delay_ms'), 'ms')} from {room.get('delay_source')}")
    elif room is not None:
        converged = "not converged" if room["convergence_s"] is None else (
            f"{_fig(room['erle_after_convergence_db'], 'dB')} after convergence in "
            f"{_fig(room['convergence_s'], 's')}")
        say(f"room: ERLE {_fig(room['erle_db'], 'dB')} ({converged}), residual echo "
            f"{_fig(room['residual_echo_dbfs'], 'dBFS')}, self-interruptions "
            f"{room['self_interruptions']} of {room['barge_ins']} barge-ins")
    stopped = report.get("stop_reason")
    for line in ([] if stopped else conv.failures()):   # a stopped run did not fail them
        print(f"remotemedia: expectation failed: {line}", file=sys.stderr)
    verdict = f"stopped ({stopped})" if stopped else "passed" if report["passed"] else "FAILED"
    if report["simulated_s"] is None:
        live = report["live"]
        say(f"{verdict}: live in {report['wall_s']:.1f} s (device round trip "
            f"{live['round_trip_ms']} ms, xruns {live['xruns']})")
    else:
        say(f"{verdict}: {report['simulated_s']:.1f} s simulated in {report['wall_s']:.1f} s")
    short = None if args.realtime else conv.costs.shortfall()
    if short:   # the run does not repeat the one the file was saved from
        say(f"remotemedia: note: {short}")
    if args.json:
        _print_stdout(json.dumps(report, allow_nan=False))
    if stopped:
        return EXIT_SIGNAL[received[0]]
    return EXIT_OK if report["passed"] else EXIT_FAILED


def _stoppable(make, check=None):
    """Make the run (`make()`), `check(run)` it, run it: (the run, its report, the signals
    received). SIGINT/SIGTERM, from before the run is made, end it with the turns so far (the
    simulated run at its next block period, the live one within its poll; `stop_reason` in
    the report); a second signal stops waiting (KeyboardInterrupt, exit 130)."""
    from ..stop_signals import StopSignals
    conv = None
    received: list[int] = []

    def on_stop(signum: int) -> None:
        received.append(signum)
        if conv is not None:
            conv.stop(STOP_REASON[signum])
    signals = StopSignals(on_stop)
    signals.install()
    try:
        conv = make()
        if received:
            conv.stop(STOP_REASON[received[0]])
        if check is not None:
            check(conv)
        return conv, conv.run(), received
    finally:
        signals.restore()


def _simulated(args, Conversation):
    """The run in simulated time, stoppable (_stoppable); --save-timing is checked before
    anything runs."""
    def check(conv) -> None:
        _check_save_timing(args, conv.turns)
    return _stoppable(lambda: Conversation(args.manifest, args.script, timing=args.timing,
                                           seed=args.seed, allow_import=args.allow_import),
                      check)


def _check_save_timing(args, turns) -> None:
    """Refuse --save-timing before running (minutes of work) rather than after: never over a
    file the run reads (the manifest, the script, the cost file, a play: file), a link, or
    what cannot be written."""
    if not args.save_timing:
        return
    from ..io.safefile import check_output
    reads = _named("--manifest", args.manifest if isinstance(args.manifest, str)
                   else None) + _named("--script", args.script) + \
        ([] if args.timing == "measured" else _named("--timing", args.timing)) + \
        [("play:", t.play) for t in turns if t.play is not None] + \
        manifest_reads(None, args.allow_import)
    check_paths(reads=reads, writes=[("--save-timing", args.save_timing)])
    target = args.save_timing
    if os.path.islink(target):   # save() replaces the name: a link would be lost
        raise UsageError(f"--save-timing {target}: is a symbolic link; name a file")
    check_output(target, "--save-timing")


def _live(args):
    """The live run (remotemedia.converse_live), its options checked first."""
    from ..converse import read_script, script_turns
    from ..converse_live import LiveConversation
    from ..io.spec import bare_path, split_spec
    if not args.input or not args.output:
        raise UsageError("converse --realtime needs --input DEV and --output DEV (devices on "
                         "a JACK server)")
    # what the options are before what is in the files they name (a file's rate, say)
    for option, spec, kind in (("--input", args.input, "input"),
                               ("--output", args.output, "output")):
        if split_spec(bare_path(spec), kind)[0] != "device":
            raise UsageError(f"converse --realtime: {option} {spec} must be a device "
                             f"(device:NAME_OR_INDEX) on a JACK server: the user's side "
                             f"connects its ports to the graph's")
    if args.timing != "measured":
        raise UsageError("--timing is for simulated time; a --realtime run measures the "
                         "audio itself (its --save-timing file is for a simulated run)")
    doc, where, base = read_script(args.script)
    if doc.get("room") is not None:
        raise UsageError(f"{where}: room: is simulated; live, use --loopback (the bot hears "
                         f"its own voice through the JACK server)")
    turns = script_turns(doc, where, base)
    _check_save_timing(args, turns)
    conv = LiveConversation(args.manifest, turns,
                            input_spec=args.input, output_spec=args.output, seed=args.seed,
                            allow_import=args.allow_import, loopback=args.loopback)
    conv.script_name = args.script
    return conv


def _fig(value, unit: str = "") -> str:
    """A figure for the human summary: '-' where it does not apply (null in --json)."""
    if value is None:
        return "-"
    return f"{value} {unit}".rstrip()
