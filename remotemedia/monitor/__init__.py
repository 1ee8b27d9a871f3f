"""Watch and steer a running stream from outside its process: a unix-socket monitor speaking
JSON lines (server), a client for it (client), the wire format and socket places (protocol)."""

from .protocol import LiveRun, ProtocolError, live_runs, resolve_target, runtime_dir
from .server import Monitor

__all__ = ["LiveRun", "Monitor", "ProtocolError", "live_runs", "resolve_target", "runtime_dir"]
