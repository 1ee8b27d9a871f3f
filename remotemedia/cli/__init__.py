"""The `remotemedia` command: argument parsing, and each command a thin function over the engine.

    remotemedia stream --manifest FILE [--input SPEC] [--output SPEC] [--duration S]
                       [--realtime | --fast] [--json] [--strict] [--events FILE]
                       [--exact-format]
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
    remotemedia converse --manifest FILE --script S.yaml [--json] [--seed N]
                         [--timing measured|FILE] [--save-timing FILE]

Exit codes: 0 success, 1 failure while running (a replay that differs from its recording, a
failed expectation), 2 bad input (arguments, SPEC, manifest, file), 130 after SIGINT and 143
after SIGTERM (the report is printed and files are finalized first).
A RemoteMediaError or bad input is one line on stderr, never a traceback.

stdout carries data only: events (one JSON object per line), then with --json the stats report
as the last line. Everything for people (start line, live status, summary) goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from ..engine.errors import OutputClosed, RemoteMediaError, UsageError
from . import common
from .batch import add_batch_parser, cmd_batch
from .converse import add_converse_parser
from .common import (EXIT_FAILED, EXIT_OK, EXIT_PIPE, EXIT_SIGNAL, EXIT_USAGE, PROG,
                     STOP_REASON, _error, _print_stdout, add_allow_import_argument,
                     add_exact_format_argument, add_json_argument, add_manifest_arguments,
                     add_mode_argument, add_monitor_arguments, add_trace_argument,
                     add_verbosity_arguments, parse_block_size, parse_duration, parse_port,
                     parse_workers, quiet_stdout)
from .info import cmd_convert_manifest, cmd_devices, cmd_nodes, cmd_ps, cmd_validate
from .paths import check_paths
from .recordings import add_observability_commands, cmd_latency, cmd_replay, cmd_report
from .stream import cmd_stream, format_summary
from .tui import cmd_tui, cmd_tui_attach, cmd_tui_spawn

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_PIPE", "cmd_completion", "EXIT_SIGNAL", "EXIT_USAGE", "PROG", "STOP_REASON",
           "build_parser", "check_paths", "cmd_batch", "cmd_convert_manifest", "cmd_devices",
           "cmd_latency", "cmd_nodes", "cmd_ps", "cmd_replay", "cmd_report", "cmd_stream",
           "cmd_tui", "cmd_tui_attach", "cmd_tui_spawn", "cmd_validate", "format_summary",
           "main", "parse_block_size", "parse_duration", "parse_port", "parse_workers"]


def _stdin_input(spec: str) -> str:
    """`-i -`: an audio file on stdin (WAV, FLAC, ... as sox and ffmpeg write to a pipe),
    read as `file:/dev/stdin` is; any other SPEC as given."""
    return "file:/dev/stdin" if spec.strip() == "-" else spec


def main(argv: list[str] | None = None) -> int:
    """The `remotemedia` entry point: parse `argv` (default sys.argv[1:]) and run the chosen
    command; returns its exit code. A RemoteMediaError is printed as one line on stderr and
    gives its exit_code (2 for bad input, 1 otherwise); Ctrl-C outside a run gives 130; a
    reader of stdout that went away (`| head`) ends the command quietly with 141, as it would
    any Unix tool. --help and --version exit through argparse's SystemExit(0)."""
    _prepare_process()
    parser = build_parser()
    _complete(parser)
    try:
        args = parser.parse_args(argv)
        common.QUIET = bool(getattr(args, "quiet", False))
        common.VERBOSE = bool(getattr(args, "verbose", False))
        if getattr(args, "allow_import", None) and os.getcwd() not in sys.path:
            # `--allow-import mynodes` finds mynodes.py in the current folder, as `python -m`
            # would; last, so that it shadows no installed module
            sys.path.append(os.getcwd())
        return args.command(args)
    except OutputClosed:
        quiet_stdout()
        return EXIT_PIPE
    except BrokenPipeError:
        quiet_stdout()
        return EXIT_PIPE
    except RemoteMediaError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_SIGNAL[signal.SIGINT]


def _complete(parser) -> None:
    # Shell completion (`remotemedia completion bash|zsh|fish` prints the hook): argcomplete
    # answers here, before anything runs, when the shell's hook calls us with _ARGCOMPLETE set.
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def cmd_completion(args) -> int:
    """`remotemedia completion SHELL`: print the shell code that completes remotemedia's
    commands, options and files (argcomplete's, for bash, zsh or fish); source it from the
    shell's startup file."""
    try:
        import argcomplete
    except ImportError:
        raise UsageError("completion needs argcomplete (pip install argcomplete)") from None
    _print_stdout(argcomplete.shellcode([PROG], shell=args.shell).rstrip("\n"))
    return EXIT_OK


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
    from .. import __version__
    parser = _Parser(prog=PROG, description="Real-time audio pipelines from a manifest, "
                                            "zero-copy and measured.")
    parser.add_argument("--version", "-V", action="version", version=f"{PROG} {__version__}")
    add_verbosity_arguments(parser)
    sub = parser.add_subparsers(dest="name", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("stream", help="run a manifest headless, with a final stats report",
                       description="Run a manifest from an input to an output. SPEC is one of: "
                                   "default, device:NAME_OR_INDEX, file:PATH.wav[:SUBTYPE], "
                                   "raw:- (f32 LE on "
                                   "stdin/stdout), sine[:FREQ], chirp, noise, silence, null, "
                                   "virtual.")
    add_manifest_arguments(p, help="the manifest (JSON or YAML); - reads it from stdin")
    p.add_argument("graph", nargs="?", metavar="GRAPH",
                   help="instead of --manifest, a chain on one line as gst-launch writes it: "
                        "\"Gain db=-3 ! LevelMeter every=5\" (input -> each -> output)")
    p.add_argument("--input", "-i", default="default", metavar="SPEC", type=_stdin_input,
                   help="where frames come from (default: %(default)s; - is an audio file "
                        "on stdin, as sox reads it)")
    p.add_argument("--output", "-o", default="default", metavar="SPEC",
                   help="where audio frames go (default: %(default)s)")
    p.add_argument("--duration", "-d", type=parse_duration, metavar="S",
                   help="stop after S seconds of audio (e.g. 5, 2.5, 300s)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_const", const=True,
                      help="pace frames in real time even without a device")
    pace.add_argument("--fast", dest="realtime", action="store_const", const=False,
                      help="run as fast as possible even with a (virtual) device")
    add_json_argument(p, "print the stats report as JSON, as the last line of stdout")
    p.add_argument("--strict", action="store_true",
                   help="fail at the first serialization of an array instead of counting it")
    add_exact_format_argument(p)
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="run each linear node (Gain) as its own multiply instead of fusing "
                        "adjacent ones into one (the stats mark fused nodes)")
    p.add_argument("--events", metavar="FILE",
                   help="write non-audio outputs (JSON lines) here instead of stdout")
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
    add_trace_argument(p)
    p.add_argument("--observe", action="append", default=[], metavar="NAME[:ARG]",
                   help="let an observer kind that a plugin registers (entry point group "
                        "remotemedia.observers) watch the run; repeatable")
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
    p.add_argument("file", nargs="?", metavar="FILE", help="the manifest; - reads stdin")
    p.add_argument("--graph", metavar="GRAPH",
                   help="convert a one-line chain (\"Gain db=-3 ! LevelMeter\") instead")
    p.add_argument("--output", "-o", metavar="OUT",
                   help="write here instead of stdout (- is stdout)")
    add_allow_import_argument(p)
    p.set_defaults(command=cmd_convert_manifest)

    p = sub.add_parser("validate", help="check a manifest without running it")
    p.add_argument("file", nargs="?", metavar="FILE", help="the manifest; - reads stdin")
    p.add_argument("--graph", metavar="GRAPH", help="check a one-line chain instead")
    add_allow_import_argument(p)
    p.set_defaults(command=cmd_validate)

    p = sub.add_parser("nodes", help="list node types with their parameters")
    add_json_argument(p, "as one JSON array")
    p.set_defaults(command=cmd_nodes)

    p = sub.add_parser("devices", help="list host APIs and sound devices, marking defaults")
    add_json_argument(p, "as one JSON array")
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
    add_json_argument(p, "as one JSON array")
    p.set_defaults(command=cmd_ps)

    add_batch_parser(sub)
    add_converse_parser(sub)

    p = sub.add_parser("completion", help="print shell completion code (bash, zsh, fish)",
                       description="Print the code that makes SHELL complete remotemedia's "
                                   "commands, options and file names. bash: "
                                   "eval \"$(remotemedia completion bash)\" in ~/.bashrc; zsh: "
                                   "the same in ~/.zshrc; fish: remotemedia completion fish | "
                                   "source, in ~/.config/fish/config.fish.")
    p.add_argument("shell", choices=("bash", "zsh", "fish"))
    p.set_defaults(command=cmd_completion)

    for name, subparser in sub.choices.items():
        add_verbosity_arguments(subparser, suppress=True)
    return parser
