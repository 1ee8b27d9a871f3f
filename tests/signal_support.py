"""A command-line run stopped as a user stops it: Ctrl-C (SIGINT) or `kill` (SIGTERM).

    with CliRun(["stream", "-m", M, "-i", "sine", "-o", f"file:{out}", "--json"]) as run:
        run.wait_ready(lambda: out.exists() and out.stat().st_size > 100_000, "audio written")
        done = run.stop(sig)
    done.assert_clean_stop(sig)          # exit 130/143, no traceback
    report = done.report()               # the JSON on stdout's last line

The run's stdout and stderr are read as they come (a chatty run never blocks on a full pipe,
and a readiness condition may look at what it said so far); the process is killed when the
`with` block ends however it ends. Readiness is a condition, never a sleep: a file that grew,
a line on stderr, the stop handler installed (`handler_installed`), blocks out on the monitor
socket (`wait_monitor_frames`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

import pytest

from remotemedia.testing import wait_until

#: (signal, exit code, stop_reason) for each signal that asks a run to stop
SIGNALS = ((signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated"))
#: parametrize a test over SIGNALS as `sig, code, reason`
each_signal = pytest.mark.parametrize("sig, code, reason", SIGNALS,
                                      ids=[s.name for s, _, _ in SIGNALS])
EXIT_CODE = {s: code for s, code, _ in SIGNALS}


class Stopped:
    """What a run left when it ended: `returncode`, `stdout`, `stderr` (text), `stop_s`
    (seconds from the signal to the exit)."""

    def __init__(self, returncode: int, stdout: str, stderr: str, stop_s: float):
        self.returncode, self.stdout, self.stderr, self.stop_s = \
            returncode, stdout, stderr, stop_s

    def assert_clean_stop(self, sig: int) -> None:
        """Exit 130 for SIGINT, 143 for SIGTERM, and no traceback on stderr."""
        assert self.returncode == EXIT_CODE[sig], (self.returncode, self.stderr)
        assert "Traceback" not in self.stderr, self.stderr

    def report(self) -> dict:
        """The JSON object on stdout's last line (a --json report)."""
        lines = self.stdout.strip().splitlines()
        assert lines, f"nothing on stdout; stderr:\n{self.stderr}"
        return json.loads(lines[-1])


class CliRun:
    """`python -m remotemedia ARGS...` in a subprocess (module docstring). `stdin`: a
    subprocess constant (default DEVNULL; PIPE to write to `proc.stdin`, bytes)."""

    def __init__(self, args: list, *, env: dict | None = None, cwd=None,
                 stdin=subprocess.DEVNULL):
        self.argv = [sys.executable, "-m", "remotemedia", *map(str, args)]
        self.proc = subprocess.Popen(self.argv, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=cwd)
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._pumps = [threading.Thread(target=self._pump, args=(f, into), daemon=True)
                       for f, into in ((self.proc.stdout, self._out),
                                       (self.proc.stderr, self._err))]
        for t in self._pumps:
            t.start()

    @staticmethod
    def _pump(f, into: list) -> None:
        for chunk in iter(lambda: f.read1(65536), b""):
            into.append(chunk)

    @property
    def stderr(self) -> str:
        """What the run wrote on stderr so far."""
        return b"".join(self._err).decode(errors="replace")

    @property
    def stdout(self) -> str:
        return b"".join(self._out).decode(errors="replace")

    def wait_ready(self, ready: Callable[[], object], what: str, timeout: float = 120.0):
        """Until `ready()` is true (returns it); AssertionError when the run exits first or
        after `timeout` s, with its stderr."""
        value = wait_until(lambda: self.proc.poll() is not None or ready(), what,
                           timeout=timeout, poll_s=0.02, context=lambda: self.stderr)
        if self.proc.poll() is not None:
            self._drain()
            raise AssertionError(f"the run exited ({self.proc.returncode}) before {what}:\n"
                                 f"{self.stderr}")
        return value

    def wait_line(self, text: str, timeout: float = 120.0) -> None:
        """Until the run has said `text` on stderr."""
        self.wait_ready(lambda: text in self.stderr, f"{text!r} on stderr", timeout)

    def wait_monitor_frames(self, sock: os.PathLike, frames: int,
                            timeout: float = 120.0) -> None:
        """Until the run's monitor socket `sock` (its --monitor) reports `frames` blocks out,
        however slow the machine is to start the run."""
        from remotemedia.monitor.client import MonitorClient
        from remotemedia.monitor.protocol import socket_listening
        self.wait_ready(lambda: socket_listening(sock), "the run's monitor socket", timeout)
        with MonitorClient.attach(str(sock)) as client:
            for msg in client.messages(timeout=timeout):
                if msg.get("type") == "snapshot" and (msg.get("stats") or {}).get(
                        "frames_out", 0) >= frames:
                    return
        raise AssertionError(f"the run's monitor closed before {frames} blocks were out; "
                             f"stderr:\n{self.stderr}")

    def stop(self, sig: int, timeout: float = 60.0) -> Stopped:
        """Send `sig` and wait for the exit; AssertionError (and the process killed) when it
        has not exited `timeout` s later."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {timeout:g} s after {signal.Signals(sig).name}"
                                 f"; stderr:\n{self.stderr}") from None
        stop_s = time.monotonic() - sent
        self._drain()
        return Stopped(rc, self.stdout, self.stderr, stop_s)

    def _drain(self) -> None:
        for t in self._pumps:
            t.join(10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._drain()

    def __enter__(self) -> "CliRun":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def handler_installed(pid: int, signum: int = signal.SIGTERM) -> bool:
    """True once process `pid` has a handler of its own for `signum` (/proc's SigCgt mask):
    Python installs none for SIGTERM, so the command's stop handler is in place."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt"))
    except (OSError, StopIteration):
        return False
    return bool(mask >> (signum - 1) & 1)
