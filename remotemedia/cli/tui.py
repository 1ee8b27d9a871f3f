"""`remotemedia tui`: the Textual app over an in-process run, a spawned one, or one attached
through its monitor socket.
"""

from __future__ import annotations

import os
import sys

from ..engine.errors import UsageError
from .common import EXIT_FAILED, EXIT_SIGNAL, EXIT_USAGE, PROG, _error, _note


def cmd_tui(args) -> int:
    """`remotemedia tui`: run the interactive TUI in this process, or hand over to
    cmd_tui_attach (--attach) or cmd_tui_spawn (--spawn). Returns the TUI's exit code (0 on a
    normal quit; 130/143 when SIGINT/SIGTERM quit it as q does, the run stopped and any
    recording finished), 1 when Textual cannot be imported. Raises UsageError (exit 2) for --attach
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
        from ..tui.app import run_app
    except ImportError as exc:
        _error(f"the TUI is not available: {exc}")
        return EXIT_FAILED
    from ..stop_signals import StopSignals
    apps: list = []
    signals = StopSignals(lambda signum: _quit_from_signal(apps, early=True))
    signals.install()
    try:
        rc = int(run_app(manifest=args.manifest, input_spec=args.input,
                         output_spec=args.output, mode=args.mode, reconnect=args.reconnect,
                         on_app=apps.append) or 0)
    except _StoppedBeforeTheApp:
        rc = EXIT_FAILED
    finally:
        signals.restore()
    return rc if signals.received is None else EXIT_SIGNAL[signals.received]


def cmd_tui_attach(args) -> int:
    """`tui --attach [PATH|PID]`: the TUI over a run in another process (its --monitor)."""
    if args.manifest or args.input or args.output or args.mode:
        raise UsageError("tui --attach watches a run that is already going; --manifest, "
                         "--input, --output and --mode belong to the run (`stream`)")
    from ..monitor.client import MonitorClient
    client = MonitorClient.attach(args.attach or None)   # UsageError before the screen changes
    try:
        terminal = _has_terminal()
    except UsageError:
        client.close()
        raise
    if not terminal:
        client.close()
        raise UsageError("tui needs an interactive terminal (stdin and stdout)")
    try:
        from ..tui.attached import run_attached
    except ImportError as exc:
        client.close()
        _error(f"the TUI is not available: {exc}")
        return EXIT_FAILED
    return int(run_attached(client) or 0)


SPAWN_TIMEOUT_S = 15.0


def cmd_tui_spawn(args) -> int:
    """`tui --spawn`: `remotemedia stream --monitor` in a child process of its own session
    (a crash of the TUI leaves it running), then the attached TUI over it. q stops the run
    (waits for it to write its report) unless --keep-running, and so do SIGINT and SIGTERM,
    which then give exit code 130/143. The child's stderr and report go to a log file beside
    its socket, named in the last line."""
    import subprocess
    from ..monitor import protocol
    from ..stop_signals import StopSignals
    if not _has_terminal():
        raise UsageError("tui needs an interactive terminal (stdin and stdout); use "
                         "`remotemedia stream` to run without one")
    if not args.manifest:
        raise UsageError("tui --spawn needs --manifest FILE (the picker works in-process only)")
    from ..engine.session import Pipeline
    Pipeline.from_manifest(args.manifest)           # a bad manifest: one line, exit 2, now
    folder = protocol.runtime_dir()
    log_path = folder / f"spawned-{os.getpid()}.log"
    argv = [sys.executable, "-m", "remotemedia", "stream", "--manifest", args.manifest,
            "--input", args.input or "default", "--output", args.output or "default",
            "--realtime", "--json", "--events", os.devnull, "--monitor"]
    if args.mode:
        argv += ["--mode", args.mode]
    from ..io.safefile import open_output
    with open_output(log_path, "tui --spawn: log", binary=True) as log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
    apps: list = []
    signals = StopSignals(lambda signum: _quit_from_signal(apps))
    signals.install()
    try:
        rc = _spawned(args, child, log_path, folder, signals, apps)
    finally:
        signals.restore()
    return rc if signals.received is None else EXIT_SIGNAL[signals.received]


class _StoppedBeforeTheApp(Exception):
    """A signal came while no app ran (it was being made): nothing to quit but the command."""


def _quit_from_signal(apps: list, early: bool = False) -> None:
    """A signal handler's way to quit the TUI as q does (the run stopped, or a spawned run
    asked to stop): on the app's own loop, which runs in this thread (the handler may not
    touch the app directly). With no app running, `early` raises _StoppedBeforeTheApp."""
    import asyncio
    loop = asyncio._get_running_loop()
    if loop is None:
        if early:
            raise _StoppedBeforeTheApp
        return
    for app in apps:
        loop.call_soon_threadsafe(lambda app=app: loop.create_task(app.action_quit()))


def _spawned(args, child, log_path, folder, signals, apps: list) -> int:
    """cmd_tui_spawn once the child runs: wait for its monitor socket, run the TUI over it,
    then wait for the child's end (unless --keep-running)."""
    import subprocess
    import time
    from ..monitor import protocol
    from ..monitor.client import MonitorClient
    path = folder / f"{child.pid}{protocol.SUFFIX}"
    deadline = time.monotonic() + SPAWN_TIMEOUT_S
    while not (path.exists() and protocol.socket_listening(path)):
        if signals.received is not None and not args.keep_running:
            child.terminate()     # stopped before the TUI was up: the run stops too
            child.wait(STOP_TIMEOUT_S)
            _note(f"the run ended with exit code {child.returncode}; its report: {log_path}")
            return EXIT_FAILED
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
    from ..tui.attached import run_attached
    if signals.received is not None:   # came before the app's loop could take it
        client.close()
        if not args.keep_running:
            child.terminate()
            child.wait(STOP_TIMEOUT_S)
        return EXIT_FAILED
    try:
        rc = int(run_attached(client, owns_run=not args.keep_running, on_app=apps.append)
                 or 0)
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


#: TERM values of terminals that cannot address the screen (Emacs' shell, a pipe's TERM=dumb)
DUMB_TERMS = frozenset({"", "dumb", "unknown", "emacs"})


def _has_terminal() -> bool:
    """stdin and stdout are a terminal that can draw: Textual on TERM=dumb (an Emacs shell)
    writes escape codes that such a terminal shows as text. UsageError (exit 2) saying so for
    a dumb one; False when there is no terminal at all. NO_COLOR is Textual's own to honour
    (it draws without colour then)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    term = os.environ.get("TERM", "")
    if term.strip().lower() in DUMB_TERMS:
        raise UsageError(f"tui needs a terminal that can draw, and TERM is "
                         f"'{term or 'unset'}': use `remotemedia stream` for a status line, "
                         f"or a terminal such as TERM=xterm-256color")
    return True

