"""`remotemedia converse`: a scripted user against a voice manifest, in simulated time, or
live on a JACK server with --realtime (remotemedia.converse_live)."""

from __future__ import annotations

import json
import os
import sys

from ..engine.errors import UsageError
from .common import (EXIT_FAILED, EXIT_OK, _print_stdout, add_json_argument,
                     add_manifest_arguments)


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
                    "input.")
    add_manifest_arguments(p, required=True)
    p.add_argument("--script", "-s", required=True, metavar="FILE",
                   help="YAML: {turns: [{say|play, after_ms, barge_in_after_ms, expect}], "
                        "room: {echo_delay_ms, echo_gain_db, rt60_ms, noise: {kind, snr_db}, "
                        "seed}}")
    add_json_argument(p, "print the whole report as JSON on the last line of stdout")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the user's noise floor (default 0)")
    p.add_argument("--timing", default="measured", metavar="measured|FILE",
                   help="node costs: measured on this machine (default), or a cost file from "
                        "--save-timing (then two runs give the same report but wall_s)")
    p.add_argument("--save-timing", metavar="FILE",
                   help="write the per-node costs this run charged, for --timing FILE")
    p.add_argument("--realtime", action="store_true",
                   help="run live on sound devices of a JACK server instead of in simulated "
                        "time: the user's side plays the turns into --input and records "
                        "--output; turn times come from the captured audio")
    p.add_argument("--input", "-i", metavar="DEV",
                   help="with --realtime: the graph's input device (device:NAME_OR_INDEX)")
    p.add_argument("--output", "-o", metavar="DEV",
                   help="with --realtime: the graph's output device (device:NAME_OR_INDEX)")
    p.set_defaults(command=cmd_converse)


def cmd_converse(args) -> int:
    """Run the conversation; a summary on stderr, the report with --json; exit 1 on a failed
    expectation."""
    from ..conversation import ConversationRun as Conversation
    if args.save_timing:
        # Refuse before running (minutes of work) rather than after.
        target = args.save_timing
        if os.path.islink(target):
            raise UsageError(f"--save-timing {target}: is a symbolic link; name a file")
        folder = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(folder):
            raise UsageError(f"--save-timing {target}: no such folder {folder}")
        if os.path.isdir(target):
            raise UsageError(f"--save-timing {target}: is a folder; name a file")
    if args.realtime:
        conv = _live(args)
    elif args.input or args.output:
        raise UsageError("--input and --output go with --realtime (a live run on devices)")
    else:
        conv = Conversation(args.manifest, args.script, timing=args.timing, seed=args.seed,
                            allow_import=args.allow_import)
    report = conv.run()
    if args.save_timing and not args.realtime:
        conv.costs.save(args.save_timing)
    for i, t in enumerate(report["turns"], 1):
        v2v = "-" if t["voice_to_voice_ms"] is None else f"{t['voice_to_voice_ms']:.0f} ms"
        parts = ", ".join(f"{k} {v:.0f}" for k, v in (t["breakdown_ms"] or {}).items())
        stop = "" if t["barge_in_stop_ms"] is None else \
            f"; barge-in stop {t['barge_in_stop_ms']:.0f} ms"
        echo = "" if "erle_db" not in t else (
            f"; ERLE {t['erle_db']} dB, residual echo {t['residual_echo_dbfs']} dBFS, "
            f"self-interruptions {t['self_interruptions']}, double talk {t['double_talk_s']} s")
        print(f"turn {i}: said {t['user']!r} heard {t['heard']!r} (WER {t['wer']}) -> "
              f"{t['reply']!r}; voice-to-voice {v2v} ({parts}){stop}{echo}", file=sys.stderr)
    room = report.get("room")
    if room is not None:
        print(f"room: ERLE {room['erle_db']} dB ({room['erle_after_convergence_db']} dB after "
              f"convergence in {room['convergence_s']} s), residual echo "
              f"{room['residual_echo_dbfs']} dBFS, self-interruptions "
              f"{room['self_interruptions']} of {room['barge_ins']} barge-ins", file=sys.stderr)
    for line in conv.failures():
        print(f"remotemedia: expectation failed: {line}", file=sys.stderr)
    if report["simulated_s"] is None:
        live = report["live"]
        print(f"{'passed' if report['passed'] else 'FAILED'}: live in {report['wall_s']:.1f} "
              f"s (device round trip {live['round_trip_ms']} ms, xruns {live['xruns']})",
              file=sys.stderr)
    else:
        print(f"{'passed' if report['passed'] else 'FAILED'}: {report['simulated_s']:.1f} s "
              f"simulated in {report['wall_s']:.1f} s", file=sys.stderr)
    if args.json:
        _print_stdout(json.dumps(report, allow_nan=False))
    return EXIT_OK if report["passed"] else EXIT_FAILED


def _live(args):
    """The live run (remotemedia.converse_live), its options checked first."""
    from ..converse_live import LiveConversation
    if not args.input or not args.output:
        raise UsageError("converse --realtime needs --input DEV and --output DEV (devices on "
                         "a JACK server)")
    if args.timing != "measured" or args.save_timing:
        raise UsageError("--timing and --save-timing are for simulated time; a --realtime "
                         "run measures the audio itself")
    return LiveConversation(args.manifest, args.script, input_spec=args.input,
                            output_spec=args.output, seed=args.seed,
                            allow_import=args.allow_import)
