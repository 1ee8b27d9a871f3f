"""Names and small helpers every command shares: the program name, exit codes, one-line
messages on stderr, data lines on stdout, and the argument types.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys



PROG = "remotemedia"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


STOP_REASON = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _print_stdout(line: str) -> None:
    """One line on stdout; a reader that went away (`| head`) is not worth a traceback."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


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