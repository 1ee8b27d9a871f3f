"""Names and small helpers every command shares: the program name, exit codes, one-line
messages on stderr, data lines on stdout, and the argument types.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys

from ..engine.errors import UsageError, escape_controls
from ..engine.node import AUDIO_LIMITS

PROG = "remotemedia"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


STOP_REASON = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


#: -q: no notes on stderr (errors still print); -v: a failure's traceback too. Set once by main().
QUIET = False
VERBOSE = False
#: what a shell reports for a tool ended by a closed pipe (128 + SIGPIPE)
EXIT_PIPE = 141


def _error(message: str) -> None:
    # one line whatever it quotes (a key or file name with a newline or an escape sequence)
    print(f"{PROG}: error: {escape_controls(message)}", file=sys.stderr)


def add_exact_format_argument(parser) -> None:
    """--exact-format: refuse a file input at another rate or channel count than the run's
    (exit 2) instead of converting it on the way in."""
    parser.add_argument("--exact-format", action="store_true",
                        help="refuse an input file whose sample rate or channel count is not "
                             "the manifest's (exit 2) instead of converting it on the way in "
                             "(soxr for the rate; 2 -> 1 channels as the mean, 1 -> N as "
                             "copies)")


def _note(message: str) -> None:
    if not QUIET:
        print(f"{PROG}: {escape_controls(message)}", file=sys.stderr)


def quiet_stdout() -> None:
    """The reader of stdout went away: point stdout at /dev/null so that no later write or the
    interpreter's final flush fails again (the way Python's docs advise for SIGPIPE)."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _print_stdout(line: str) -> None:
    """One line on stdout; a reader that went away (`| head`) is not worth a traceback: the
    line is dropped and BrokenPipeError propagates for main() to exit quietly (EXIT_PIPE)."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_stdout()
        raise


def add_verbosity_arguments(p, suppress: bool = False) -> None:
    """-q/--quiet and -v/--verbose on parser `p`; `suppress` for a subcommand's copy, so that
    `remotemedia -q stream` and `remotemedia stream -q` both work."""
    default = argparse.SUPPRESS if suppress else False
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="say nothing on stderr but errors")
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="show a failure's traceback (as REMOTEMEDIA_DEBUG=1 does)")


_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s)")


def parse_duration(text: str) -> float:
    """argparse type for a duration: seconds as a positive finite number. Accepts what sox,
    ffmpeg and coreutils' timeout users type: `90`, `2.5`, `90s`, `500ms`, `1m30s`, `1h2m`,
    `1:30` (m:s) and `1:02:03` (h:m:s, fractions allowed in the last field).
    ArgumentTypeError for anything else, zero, or a value that is not finite."""
    value = text.strip().lower()
    bad = argparse.ArgumentTypeError(
        f"expected a positive duration (90, 90s, 1m30s, 1:30, 500ms), got '{text}'")
    seconds: float | None = None
    try:
        if ":" in value:
            fields = value.split(":")
            if len(fields) > 3 or any(not f or f.startswith(("-", "+")) for f in fields):
                raise bad
            *whole, last = fields
            seconds = float(last)
            for i, f in enumerate(reversed(whole)):
                if not f.isdigit() or (i == 0 and len(whole) == 2 and int(f) >= 60):
                    raise bad
                seconds += int(f) * (60 if i == 0 else 3600)
            if len(whole) and float(last) >= 60:
                raise bad
        elif _PART.match(value) and _PART.sub("", value) == "" and value[-1].isalpha():
            parts = _PART.findall(value)
            units = [u for _, u in parts]
            order = ["h", "m", "s", "ms"]
            if [order.index(u) for u in units] != sorted({order.index(u) for u in units}):
                raise bad            # each unit once, largest first: 1m30s, not 30s1m
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
        else:
            seconds = float(value)
    except ValueError:
        raise bad from None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise bad
    return seconds


#: the largest --block-size (samples): the engine's limit wherever a block size comes from
MAX_BLOCK_SIZE = AUDIO_LIMITS["block_size"]


def _whole_number(text: str, low: int, high: int | None, expected: str) -> int:
    """`text` as a whole number from `low` to `high` (None: no limit); ArgumentTypeError
    saying `expected` otherwise (argparse prints it in one line, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {expected}, got '{text}'")
    return value


def parse_block_size(text: str) -> int:
    """A whole number of samples from 1 to MAX_BLOCK_SIZE; ArgumentTypeError otherwise."""
    return _whole_number(text, 1, MAX_BLOCK_SIZE,
                         f"a positive whole number of samples up to {MAX_BLOCK_SIZE}")


def parse_port(text: str) -> int:
    """argparse type for --metrics-port: a TCP port 0-65535 (0 picks a free one);
    ArgumentTypeError otherwise."""
    return _whole_number(text, 0, 65535, "a port number 0-65535")


def parse_seed(text: str) -> int:
    """argparse type for a --seed: a whole number >= 0 (what numpy's generators take);
    ArgumentTypeError otherwise."""
    return _whole_number(text, 0, None, "a whole number >= 0")


def parse_rate(text: str) -> int:
    """argparse type for a sample rate: a whole number of Hz from 1 to AUDIO_LIMITS' 768000;
    ArgumentTypeError otherwise."""
    high = AUDIO_LIMITS["sample_rate"]
    return _whole_number(text, 1, high, f"a sample rate in Hz from 1 to {high}")


def parse_workers(text: str) -> int:
    """argparse type for --workers: a whole number of at least 1; ArgumentTypeError otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got '{text}'")
    return value


def add_mode_argument(p) -> None:
    """Add --mode queued|callback (default None: queued for a device input) to the parser `p`."""
    p.add_argument("--mode", choices=("queued", "callback"), default=None,
                   help="with a sound device input: run the graph on its own thread (queued, "
                        "the default: a slow node cannot stall the audio thread) or inside the "
                        "audio callback (callback: one block less latency)")


def add_allow_import_argument(p) -> None:
    """Add --allow-import MODULE (repeatable; a list, empty by default) to the parser `p`."""
    p.add_argument("--allow-import", action="append", default=[], metavar="MODULE",
                   help="let the manifest name node classes from MODULE (repeatable)")


def add_manifest_arguments(p, *, required: bool = False, help: str | None = None) -> None:
    """Add --manifest/-m FILE (`required`, with `help` if given) and, for what that manifest may
    load, --allow-import MODULE (add_allow_import_argument) to the parser `p`."""
    p.add_argument("--manifest", "-m", required=required, metavar="FILE", help=help)
    add_allow_import_argument(p)


def add_json_argument(p, help: str) -> None:
    """Add --json (a flag, False by default; `help` says what it prints) to the parser `p`."""
    p.add_argument("--json", action="store_true", help=help)


def add_trace_argument(p) -> None:
    """Add --trace FILE (a Chrome trace-event JSON of the run) to the parser `p`."""
    p.add_argument("--trace", metavar="FILE",
                   help="write a Chrome trace-event JSON of the run (ui.perfetto.dev opens it)")


def add_monitor_arguments(p) -> None:
    """Add --monitor [PATH], --metrics-port PORT and --metrics-host HOST to the parser `p` (used
    by `stream`)."""
    p.add_argument("--monitor", nargs="?", const="", default=None, metavar="PATH",
                   help="serve a monitor socket that `tui --attach` and other clients use "
                        "(default: a per-user socket named by PID; see `remotemedia ps`)")
    p.add_argument("--metrics-port", type=parse_port, default=None, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (0: a free port)")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                   help="address for --metrics-port (default: %(default)s; any other "
                        "serves the metrics, unauthenticated, to the network: warned on stderr)")


def resolve_manifest(args, file_attr: str = "manifest", graph_attr: str = "graph") -> None:
    """Put the manifest a command was given into `args.<file_attr>`: a path as typed, the
    document read from stdin for `-`, or the document of a one-line graph
    (engine/graphline.py). UsageError (exit 2) when neither or both are given;
    ManifestError for stdin or a graph that is not a manifest."""
    path = getattr(args, file_attr, None)
    graph = getattr(args, graph_attr, None)
    flag = "--manifest" if file_attr == "manifest" else "FILE"
    if path is not None and graph is not None:
        raise UsageError(f"give {flag} or a graph, not both")
    if graph is not None:
        from ..engine.graphline import parse_graph
        setattr(args, file_attr, parse_graph(graph))
    elif path is None:
        raise UsageError(f"give {flag} FILE or a graph such as \"Gain db=-3 ! LevelMeter\"")
    elif path == "-":
        from ..engine.graphline import NamedDocument
        from ..engine.manifest import parse_manifest_text
        from ..engine.loader import read_bounded
        try:
            # bounded like every manifest read (engine/docparse.py LIMITS)
            text = read_bounded(sys.stdin.buffer).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"the manifest on stdin is not UTF-8 text (byte {exc.start})") \
                from None
        setattr(args, file_attr, NamedDocument(parse_manifest_text(text, "<stdin>"), "<stdin>"))


def manifest_label(manifest) -> str:
    """What to call a manifest argument in messages and run listings: its path, or the name
    a document from stdin or a graph line carries."""
    return manifest if isinstance(manifest, str) else getattr(manifest, "source_name", "<dict>")
