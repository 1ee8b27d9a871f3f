"""A client of a run's monitor socket: read its messages, send commands.

    with MonitorClient.attach("12345") as client:     # a PID, a socket path, or None
        hello = client.hello
        msg = client.read(timeout=2.0)                # the next message (dict) or None at end
        client.send("bypass", on=True)                # returns the id echoed in the reply

Reading is blocking with a timeout; `MonitorClient.start_reader(callback)` reads on a thread of
its own instead (the TUI). Messages are dicts as protocol.py documents them.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from ..engine.errors import MonitorClosed
from . import protocol


#: the longest message read (the `end` message of a run of thousands of nodes is well under)
MAX_MESSAGE_BYTES = 64 << 20


class MonitorClient:
    """A client of a run's monitor socket: read() the hello, snapshots, events and the end
    message as dicts; send commands (stop, reset, bypass, record). attach(PATH|PID|None)
    finds the socket; UsageError (exit 2) when there is no such run."""
    def __init__(self, sock: socket.socket, path: Path):
        self.sock = sock
        self.path = path
        self._buf = b""
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.closed = False
        try:
            self.hello = self.read(timeout=5.0)
        except BaseException:
            self.close()
            raise
        if self.hello is None or self.hello.get("type") != "hello":
            error = (self.hello or {}).get("error", "no hello from the monitor")
            self.close()
            raise MonitorClosed(f"cannot attach to {path}: {error}")

    @classmethod
    def attach(cls, target: str | Path | None = None) -> "MonitorClient":
        """Connect to a run by PID, socket path, or (None) the only live run. Raises
        UsageError when there is none or the socket refuses us."""
        path = protocol.resolve_target(None if target is None else str(target))
        return cls(protocol.connect(path), path)

    def read(self, timeout: float | None = None) -> dict | None:
        """The next message, or None when the server closed the connection. Raises
        TimeoutError when nothing complete arrives within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1:]
                try:
                    return json.loads(line)
                except ValueError:
                    raise MonitorClosed(f"{self.path}: the monitor sent a line that is not "
                                        f"JSON") from None
            if len(self._buf) > MAX_MESSAGE_BYTES:   # never more memory than one message
                raise MonitorClosed(f"{self.path}: the monitor sent a message longer than "
                                    f"{MAX_MESSAGE_BYTES:,} bytes")
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no message from the monitor")
                self.sock.settimeout(left)
            else:
                self.sock.settimeout(None)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no message from the monitor") from None
            except OSError:
                data = b""
            if not data:
                return None
            self._buf += data

    def messages(self, timeout: float | None = None):
        """Iterate messages until the server closes."""
        while True:
            msg = self.read(timeout)
            if msg is None:
                return
            yield msg

    def send(self, cmd: str, **fields) -> int:
        """Send one command; return its id (the reply echoes it)."""
        ident = next(self._ids)
        self.send_raw(protocol.encode({"cmd": cmd, "id": ident, **fields}))
        return ident

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests of what the server does with garbage)."""
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise MonitorClosed(f"the monitor at {self.path} went away: {exc}") from None

    def request(self, cmd: str, timeout: float = 5.0, **fields) -> dict:
        """Send a command and wait for its reply (messages in between are skipped)."""
        ident = self.send(cmd, **fields)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise MonitorClosed("the monitor closed before replying")
            if msg.get("type") in ("reply", "error") and msg.get("id") == ident:
                return msg

    def start_reader(self, callback: Callable[[dict | None], None]) -> threading.Thread:
        """Read on a daemon thread, calling `callback(message)` for each and `callback(None)`
        once when the connection ends."""
        def run():
            try:
                while not self.closed:
                    try:
                        msg = self.read(timeout=0.5)
                    except TimeoutError:
                        continue
                    except (OSError, ValueError):
                        msg = None
                    callback(msg)
                    if msg is None:
                        return
            finally:
                pass
        self._reader = threading.Thread(target=run, name="remotemedia-attach", daemon=True)
        self._reader.start()
        return self._reader

    def close(self) -> None:
        """Detach: the run goes on. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)

    def __enter__(self) -> "MonitorClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
