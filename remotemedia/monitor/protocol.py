"""The monitor's wire format and where its sockets live.

Wire: JSON lines (UTF-8, strict RFC 8259, one object per line, at most MAX_LINE bytes), over a
unix stream socket. No pickle: a client can never make the stream run code.

    server -> client
      {"type": "hello", "protocol": 1, "pid": int, "manifest": str, "path": str,
       "input": str, "output": str, "audio": {"sample_rate", "block_size", "channels"},
       "nodes": [[id, node_type], ...], "edges": [[from, to], ...], "hz": float,
       "commands": [str, ...]}
      {"type": "snapshot", "seq": int, "t": unix seconds, "state": str, "reason": str|null,
       "stats": <the stats report: Session.stats()>|null, "levels": {<runner.Levels fields>},
       "engine_us": [float, ...] (recent engine latencies, oldest first),
       "end_to_end_us": [float, ...]|null, "bypass": bool, "monitor": {<Monitor.counts()>}}
      {"type": "event", "t": unix seconds, "node": str|null, "event": str, "record": {...}}
      {"type": "reply", "cmd": str, "id": any, "ok": true, ...}
      {"type": "error", "cmd": str|null, "id": any, "error": str}
      {"type": "end", "state": str, "reason": str|null, "stats": {...}|null}

    client -> server
      {"cmd": "stop"} | {"cmd": "reset"} | {"cmd": "bypass", "on": bool}  (no "on": toggle)
      {"cmd": "record", "action": "start"|"stop", "path"?: str} | {"cmd": "ping"} | {"cmd": "snapshot"}
      an optional "id" is echoed in the reply.

Sockets: one per run, `<pid>.sock` in a per-user folder (mode 0700) under $XDG_RUNTIME_DIR
(`remotemedia/`) or else the temp dir (`remotemedia-monitor-<uid>/`); the socket itself is 0600.
`remotemedia ps` lists the sockets there whose process is alive and removes the others.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine import strictjson
from ..engine.errors import ProtocolError, UsageError

PROTOCOL = 1
#: a line longer than this (no newline within it) is refused and the client disconnected
MAX_LINE = 64 * 1024
SUFFIX = ".sock"
#: the most snapshots a second the monitor sends (the issue's "up to 20 Hz")
MAX_HZ = 20.0

COMMANDS = ("stop", "reset", "bypass", "record", "ping", "snapshot")


def encode(message: dict) -> bytes:
    """One message as a strict JSON line (bytes, newline-terminated). The common case (every
    float finite) is plain json with allow_nan=False; a NaN or Infinity anywhere sends it the
    slow way, through strictjson (null, named in "non_finite")."""
    try:
        text = json.dumps(message, allow_nan=False, default=_default)
    except ValueError:
        text = strictjson.dumps(message, default=_default)
    return (text + "\n").encode("utf-8")


def _default(value: Any):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def decode(line: bytes) -> dict:
    """One received line as a JSON object. Raises ProtocolError naming what is wrong."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _refuse_constant(name: str):
    raise ProtocolError(f"not strict JSON: {name}")


def parse_command(message: dict) -> tuple[str, dict]:
    """Validate a client's command: (name, arguments). Raises ProtocolError."""
    cmd = message.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError('missing "cmd" (one of: ' + ", ".join(COMMANDS) + ")")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {cmd!r} (one of: {', '.join(COMMANDS)})")
    args: dict = {}
    if cmd == "bypass":
        on = message.get("on")
        if on is not None and not isinstance(on, bool):
            raise ProtocolError('bypass: "on" must be true, false or absent (toggle)')
        args["on"] = on
    elif cmd == "record":
        action = message.get("action")
        if action not in ("start", "stop"):
            raise ProtocolError('record: "action" must be "start" or "stop"')
        args["action"] = action
        if "path" in message:
            if not isinstance(message["path"], str):
                raise ProtocolError('record: "path" must be a string')
            args["path"] = message["path"]
    return cmd, args


# -- where sockets live -----------------------------------------------------------------------------

def runtime_dir(create: bool = True) -> Path:
    """The per-user folder for monitor sockets (mode 0700, owned by this user).

    Raises UsageError when it exists but belongs to someone else, is a symlink, or is not a
    folder: a socket there could be watched or replaced by another user."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        folder = Path(xdg) / "remotemedia"
    else:
        folder = Path(tempfile.gettempdir()) / f"remotemedia-monitor-{os.getuid()}"
    if create:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UsageError(f"cannot make the monitor folder {folder}: {exc.strerror}") \
                from None
    check_private_dir(folder)
    return folder


def check_private_dir(folder: Path) -> None:
    """Make the per-user socket folder if missing and check it is ours and 0700; UsageError
    otherwise (someone else could reach the sockets)."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"monitor folder {folder} is not a folder (a symlink or a file)")
    if st.st_uid != os.getuid():
        raise UsageError(f"monitor folder {folder} belongs to uid {st.st_uid}, not to this "
                         f"user ({os.getuid()}); refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(folder, 0o700)


def default_socket_path(pid: int | None = None) -> Path:
    """This process's socket: <runtime_dir>/<pid>.sock."""
    return runtime_dir() / f"{os.getpid() if pid is None else pid}{SUFFIX}"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _connect_unix(path: Path | str, timeout: float) -> socket.socket:
    """A stream socket connected to the unix socket at `path`, `timeout` seconds on its
    operations; OSError (the socket closed) when the connection is refused or fails."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(os.fspath(path))
    except BaseException:
        s.close()
        raise
    return s


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected unix socket (SO_PEERCRED);
    None where the platform cannot tell."""
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _check_server(s: socket.socket, path) -> None:
    # The mirror of the server's own check: a socket at a path anyone could have made (a
    # shared folder, a name typed by hand) may be served by another user, whose "run" would
    # then be shown and sent our commands. Only this user's runs (or root's) are attached to.
    uid = peer_uid(s)
    if uid is not None and uid not in (os.geteuid(), 0):
        s.close()
        raise UsageError(f"cannot attach to {path}: it is served by uid {uid}, not by this "
                         f"user ({os.geteuid()}); refusing to trust it")


def socket_listening(path: Path | str, timeout: float = 0.5) -> bool:
    """True when something accepts connections on the unix socket at `path`."""
    try:
        _connect_unix(path, timeout).close()
        return True
    except OSError as exc:
        return exc.errno == errno.EAGAIN    # listening, its backlog full for the moment


@dataclass(frozen=True)
class LiveRun:
    """One run found in the socket folder: pid, socket path, and what its hello said (manifest,
    input, output, state, seconds of audio)."""
    pid: int
    path: Path


def live_runs(clean: bool = True) -> tuple[list[LiveRun], list[Path]]:
    """The runs with a monitor socket in the per-user folder, by pid; and the stale sockets
    (process gone) that were removed (`clean`) or found."""
    folder = runtime_dir(create=False)
    runs: list[LiveRun] = []
    stale: list[Path] = []
    if not folder.is_dir():
        return runs, stale
    for entry in sorted(folder.iterdir()):
        if not entry.name.endswith(SUFFIX):
            continue
        stem = entry.name[:-len(SUFFIX)]
        if not stem.isdigit():
            continue
        pid = int(stem)
        if pid_alive(pid) and socket_listening(entry):
            runs.append(LiveRun(pid, entry))
        elif not pid_alive(pid) or not socket_listening(entry):
            if clean:
                try:
                    entry.unlink()
                except FileNotFoundError:
                    pass
            stale.append(entry)
    return runs, stale


def resolve_target(target: str | None) -> Path:
    """`tui --attach` / a client's target: None (the only live run), a PID, or a socket path.
    Raises UsageError naming what was not found."""
    if target is None or target == "":
        runs, _ = live_runs()
        if not runs:
            raise UsageError("no running stream to attach to (start one with "
                             "`remotemedia stream --monitor ...`; `remotemedia ps` lists them)")
        if len(runs) > 1:
            raise UsageError("several runs are live (" + ", ".join(str(r.pid) for r in runs)
                             + "): name one by PID or socket path")
        return runs[0].path
    if target.isdigit():
        path = runtime_dir(create=False) / f"{target}{SUFFIX}"
        if not path.exists():
            raise UsageError(f"no monitor socket for PID {target} (looked for {path}; "
                             f"`remotemedia ps` lists the live runs)")
        return path
    path = Path(target)
    if not path.exists():
        raise UsageError(f"no monitor socket at {target}")
    try:
        is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError as exc:
        raise UsageError(f"cannot use monitor socket {target}: {exc.strerror}") from None
    if not is_socket:
        raise UsageError(f"{target} is not a socket")
    return path


#: how long connect() keeps trying a socket whose listen backlog is full (EAGAIN: a burst of
#: attaches) or that refuses while its run is still starting (ECONNREFUSED), and its backoff
CONNECT_RETRY_S = 5.0
REFUSED_RETRY_S = 1.0
BACKOFF_S = (0.01, 0.25)


def connect(path: Path | str, timeout: float = 3.0, retry_s: float = CONNECT_RETRY_S,
            refused_retry_s: float = REFUSED_RETRY_S) -> socket.socket:
    """A connected client socket. A full listen backlog (EAGAIN) is tried again for up to
    `retry_s` seconds and a refusal (ECONNREFUSED: the run is starting, or has ended) for up to
    `refused_retry_s`, with a doubling backoff from 10 to 250 ms. Raises UsageError (refused,
    no permission, gone, still busy)."""
    start = time.monotonic()
    delay = BACKOFF_S[0]
    while True:
        try:
            s = _connect_unix(path, timeout)
        except OSError as exc:
            waited = time.monotonic() - start
            if (exc.errno == errno.EAGAIN and waited + delay <= retry_s) or \
                    (exc.errno == errno.ECONNREFUSED
                     and waited + delay <= refused_retry_s):
                time.sleep(delay)
                delay = min(2 * delay, BACKOFF_S[1])
                continue
            why = {errno.EACCES: "permission denied (the run belongs to another user)",
                   errno.ECONNREFUSED: "nothing is listening (the run has ended)",
                   errno.EAGAIN: f"the run is busy (its listen backlog stayed full for "
                                 f"{waited:.1f} s)",
                   errno.ENOENT: "no such socket"}.get(exc.errno, exc.strerror)
            raise UsageError(f"cannot attach to {path}: {why}") from None
        _check_server(s, path)
        return s
