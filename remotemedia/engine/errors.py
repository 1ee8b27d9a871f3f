"""One exception tree for the whole project: every class remotemedia raises on purpose is here.

    RemoteMediaError                 exit_code 1 unless a subclass says otherwise
     +-- ManifestError               a manifest that cannot run (exit 2)
     +-- UnknownNodeType             a node type no registry knows (exit 2; also a KeyError)
     +-- UsageError                  a bad argument, SPEC or file name (exit 2)
     |    +-- UnsupportedMix         a file's channels with no declared mix (also ValueError)
     +-- DocumentError               YAML/JSON text that is not a valid document (exit 2; also
     |                               a ValueError; engine/docparse.py)
     +-- DeviceError                 an audio device that cannot be used (exit 1)
     |    +-- DeviceNotFound         named wrongly by the user (exit 2)
     |    +-- DeviceLost             gone in the middle of a run (exit 1)
     +-- NodeError                   a node raised while processing; names the node
     +-- ExecutorError               a node's executor (thread, process, ray) failed; the session
     |    |                          wraps it in a NodeError naming the node
     |    +-- RemoteNodeError        the node raised where it runs (its thread, worker, actor)
     |    +-- ExecutorCrashed        the worker died or stopped answering, frames in flight
     |    |    +-- WorkerDied        a transport's word that its worker is gone, before the
     |    |                          failure policy decides (executors/base.py)
     |    +-- ExecutorStartError     the worker could not start, import or set up its node
     +-- ClusterError                no Ray cluster reachable, or Ray not installed (ray/cluster.py)
     +-- ModelError                  a model that cannot be loaded or run
     |    +-- ModelUnavailable       Silero's ONNX model or onnxruntime missing (nodes/vad.py)
     +-- CodecError                  bytes that do not follow a codec's format (also a
     |                               ValueError): the process-node wire, recordings
     +-- NotRecoverable              a damaged WAV whose samples cannot be found (exit 2; also a
     |                               ValueError; io/wavrecover.py)
     +-- ProtocolError               a monitor command line that is not valid (also a ValueError;
     |                               monitor/protocol.py)
     +-- MonitorClosed               a run's monitor closed the connection (monitor/client.py)
     +-- SerializationError          strict mode saw an array being serialized
     +-- PipelineClosed              the session was closed by its owner
     +-- PipelineBroken              the session failed and cannot take more frames
     +-- OutputClosed                the reader of stdout or a pipe went away (exit 141)

Every message is one line; the CLI prints `str(exc)` and exits with `exc.exit_code`.
Third-party errors are translated where they enter (devices, files, executors: one table per
boundary, remotemedia/executors/base.py `translate`) and chained with `from`. The modules named
above raise their class and import it from here, so no two classes share a name.
"""

from __future__ import annotations


class RemoteMediaError(Exception):
    """Base of every error remotemedia raises on purpose. `exit_code` is what the CLI exits
    with; `stop_reason` what a run that it ends reports (a lost device: "device_lost")."""

    exit_code = 1
    stop_reason = "error"


class ManifestError(RemoteMediaError):
    """The manifest is invalid: names the file, the node id where there is one, and the problem."""

    exit_code = 2

    def __init__(self, problem: str, *, source: str | None = None, node_id: str | None = None):
        self.problem = problem
        self.source = source
        self.node_id = node_id
        where = source or "<manifest>"
        if node_id is not None:
            where = f"{where}: node '{node_id}'"
        # a key or value written into the message may hold a newline or a terminal escape
        super().__init__(escape_controls(f"{where}: {problem}"))


class UsageError(RemoteMediaError):
    """A bad command-line argument, SPEC, or file given by the user."""

    exit_code = 2


class DeviceError(RemoteMediaError):
    """An audio device could not be opened or failed while running (exit 1); the subclasses
    say which: DeviceNotFound (named wrongly, exit 2), DeviceLost (io/portaudio.py: gone in
    the middle of a run)."""

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class DeviceNotFound(DeviceError):
    """The user named a device that is not there, or one without the channels asked for: a
    bad input (exit 2). The message lists the devices there are."""

    exit_code = 2


class DeviceLost(DeviceError):
    """A device stopped delivering audio in the middle of a run (its server went away, it was
    unplugged): exit code 1, stop reason `device_lost`. The message is one line naming the
    device, its host API and what happened."""

    stop_reason = "device_lost"


class NodeError(RemoteMediaError):
    """A node raised while processing a frame; the original exception is the __cause__."""

    def __init__(self, node_id: str, exc: BaseException, during: str = ""):
        self.node_id = node_id
        when = f" in {during}" if during else ""
        super().__init__(f"node '{node_id}' failed{when}: {type(exc).__name__}: {exc}")


class ExecutorError(RemoteMediaError):
    """A node's executor (`thread`, `process`, `ray`) failed; the session wraps it in a NodeError
    naming the node, with this as its __cause__."""


class RemoteNodeError(ExecutorError):
    """The node raised where its executor runs it (worker thread, process or Ray actor); the
    message carries the exception's type and text and where it ran. Raised under `on_error:
    fail` only (skip and restart count it and drop that frame)."""


class ExecutorCrashed(ExecutorError):
    """The worker (thread, process, actor) died, or stayed silent past its deadline, with
    frames in flight; the message says how many were lost."""


class ExecutorStartError(ExecutorError):
    """The worker could not start: a process that would not spawn or import the node, a Ray
    cluster that cannot place the actor, a node whose setup() raised where it runs."""


class WorkerDied(ExecutorCrashed):
    """Raised by an executor's transport: its worker is gone (`reason` says how, one line).
    RemoteNode's failure policy turns it into a restart, or an ExecutorCrashed that says how
    many frames were lost with it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ClusterError(RemoteMediaError):
    """Ray is not installed, or no cluster could be reached or started."""


class DocumentError(RemoteMediaError, ValueError):
    """The text is not a valid document; `line` is 1-based, or None when unknown."""

    exit_code = 2

    def __init__(self, problem: str, line: int | None = None):
        super().__init__(problem)
        self.problem = problem
        self.line = line

    def __str__(self) -> str:
        if self.line is None or f"line {self.line}" in self.problem:
            return self.problem
        return f"{self.problem} at line {self.line}"


class UnknownNodeType(RemoteMediaError, KeyError):
    """No registry knows this node type; `hint` suggests a close name or says how to allow an
    import path. Also a KeyError, as a failed registry lookup."""

    exit_code = 2

    def __init__(self, name: str, hint: str = ""):
        super().__init__(name)
        self.name = name
        self.hint = hint

    def __str__(self):
        return f"unknown node type '{self.name}'{self.hint}"


class ModelError(RemoteMediaError):
    """A model a node needs cannot be loaded here; the message says why and what to install."""


class ModelUnavailable(ModelError):
    """The Silero model cannot be loaded here; the message says why and what to install."""


class CodecError(RemoteMediaError, ValueError):
    """Bytes that do not follow the format a codec reads (a truncated or foreign message)."""


class NotRecoverable(RemoteMediaError, ValueError):
    """The file is not a WAV whose samples can be found; the message says why (one line)."""

    exit_code = 2


class ProtocolError(RemoteMediaError, ValueError):
    """A line that is not a valid command; the message is what the client is told."""


class MonitorClosed(RemoteMediaError):
    """The run's monitor closed the connection (the run ended or refused us)."""


class SerializationError(RemoteMediaError):
    """Strict mode: an ndarray was serialized while a session was open."""


class PipelineClosed(RemoteMediaError):
    """The session was closed by its owner; no more frames can be pushed."""


class PipelineBroken(RemoteMediaError):
    """The session stopped after a failure; no more frames can be pushed."""


class UnsupportedMix(UsageError, ValueError):
    """No declared channel mix from a file's channel count to the run's (io/convert.py knows
    2 -> 1 as the mean and 1 -> N as copies): a bad input file (exit 2)."""


class OutputClosed(RemoteMediaError):
    """The reader of an output went away (`remotemedia ... | head`): the run stops cleanly and
    the CLI exits quietly with 141 (128 + SIGPIPE), the status a shell reports for any Unix tool
    ended by a closed pipe."""

    exit_code = 141
    stop_reason = "output_closed"


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7f, *range(0x80, 0xa0))}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028",
                  0x2029: "\\u2029", 0x85: "\\x85"})


def escape_controls(text: str) -> str:
    """`text` with every control character (C0, DEL, C1, the Unicode line and paragraph
    separators) written as its Python escape (`\\n`, `\\x1b`), so a message that quotes a
    user's key, value or file name stays one line and cannot move a terminal's cursor. A
    surrogate escape (a file name that is not UTF-8) is kept: it prints as its own bytes."""
    return text.translate(_CONTROLS)


def one_line(value: BaseException | str) -> str:
    """An exception (or its text) as one line for a screen, a log or a report: its first line
    with runs of whitespace collapsed (a remote worker's message may carry its traceback
    after it); an exception with no message gives its type's name, empty text 'unknown
    error'."""
    text = str(value).strip()
    if text:
        return " ".join(text.splitlines()[0].split())
    return type(value).__name__ if isinstance(value, BaseException) else "unknown error"
