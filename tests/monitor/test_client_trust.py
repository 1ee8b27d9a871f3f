"""The client keeps the server's rule in the other direction: `tui --attach PATH` to a socket
another user serves is refused (its peer credentials, as the server refuses a client of another
uid), and what a server sends costs the client at most one bounded message: a line with no end
or one that is not JSON is one line, never a traceback or memory without bound. Before: the
client trusted any socket at the path it was given, buffered bytes without a newline for ever,
and `json.loads` of a garbage line was a traceback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from remotemedia.engine.errors import MonitorClosed
from remotemedia.monitor import client as client_mod
from remotemedia.monitor.client import MonitorClient

NOBODY = 65534
HELLO = b'{"type": "hello", "version": 1}\n'


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="serving as another uid needs root and setpriv")
@pytest.mark.timeout(120)
def test_attaching_to_a_socket_another_user_serves_is_refused(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="rm-trust-", dir="/tmp"))
    try:
        os.chmod(base, 0o1777)                      # a shared folder, like /tmp
        path = base / "run.sock"
        ready = base / "ready"
        server = ("import socket, os, time\n"
                  f"s = socket.socket(socket.AF_UNIX); s.bind({str(path)!r}); "
                  f"os.chmod({str(path)!r}, 0o777); s.listen(4)\n"
                  f"open({str(ready)!r}, 'w').close()\n"
                  "while True:\n"
                  "    c, _ = s.accept(); c.sendall(" + repr(HELLO) + ")\n")
        fake = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                 "--clear-groups", sys.executable, "-c", server])
        try:
            from remotemedia.testing import wait_until
            wait_until(ready.exists, what="the other user's server")
            done = subprocess.run([sys.executable, "-m", "remotemedia", "tui", "--attach",
                                   str(path)], capture_output=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
        finally:
            fake.kill()
            fake.wait(10)
        err = done.stderr.decode()
        assert done.returncode == 2, err
        assert len(err.splitlines()) == 1 and f"served by uid {NOBODY}" in err, err
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _serve_once(payload: bytes):
    """A same-uid server on a socket pair that sends `payload` then keeps the line open."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def send():
        try:
            theirs.sendall(payload)
        except OSError:
            pass

    threading.Thread(target=send, daemon=True).start()
    return ours, theirs


def test_a_line_that_is_not_json_is_one_line():
    ours, theirs = _serve_once(b"\x00garbage{\n")
    try:
        with pytest.raises(MonitorClosed, match="not JSON"):
            MonitorClient(ours, Path("x.sock"))
    finally:
        theirs.close()


def test_a_message_without_end_is_refused_at_the_bound(monkeypatch):
    monkeypatch.setattr(client_mod, "MAX_MESSAGE_BYTES", 1 << 20)
    ours, theirs = _serve_once(b"{" + b" " * (4 << 20))
    try:
        with pytest.raises(MonitorClosed, match="longer than 1,048,576 bytes"):
            MonitorClient(ours, Path("x.sock"))
    finally:
        theirs.close()
