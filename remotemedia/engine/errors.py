"""One exception tree for the whole project.

    RemoteMediaError                 exit_code 1 unless a subclass says otherwise
     +-- ManifestError               a manifest that cannot run (exit 2)
     +-- UnknownNodeType             a node type no registry knows (exit 2; also a KeyError)
     +-- UsageError                  a bad argument, SPEC or file name (exit 2)
     +-- DeviceError                 an audio device that cannot be used (exit 1)
     |    +-- DeviceNotFound         named wrongly by the user (exit 2)
     |    +-- DeviceLost             gone in the middle of a run (io/portaudio.py; exit 1)
     +-- NodeError                   a node raised while processing; names the node
     +-- ModelError                  a model that cannot be loaded or run (Silero's ONNX file)
     +-- CodecError                  bytes that do not follow a codec's format (also a
     |                               ValueError): the process-node wire, recordings
     +-- SerializationError          strict mode saw an array being serialized
     +-- PipelineClosed              the session was closed by its owner
     +-- PipelineBroken              the session failed and cannot take more frames
     +-- OutputClosed                the reader of stdout or a pipe went away (exit 141)

Every message is one line; the CLI prints `str(exc)` and exits with `exc.exit_code`.
Third-party errors are translated where they enter (devices, files) and chained with `from`.
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
        super().__init__(f"{where}: {problem}")


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


class NodeError(RemoteMediaError):
    """A node raised while processing a frame; the original exception is the __cause__."""

    def __init__(self, node_id: str, exc: BaseException, during: str = ""):
        self.node_id = node_id
        when = f" in {during}" if during else ""
        super().__init__(f"node '{node_id}' failed{when}: {type(exc).__name__}: {exc}")


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


class CodecError(RemoteMediaError, ValueError):
    """Bytes that do not follow the format a codec reads (a truncated or foreign message)."""


class SerializationError(RemoteMediaError):
    """Strict mode: an ndarray was serialized while a session was open."""


class PipelineClosed(RemoteMediaError):
    """The session was closed by its owner; no more frames can be pushed."""


class PipelineBroken(RemoteMediaError):
    """The session stopped after a failure; no more frames can be pushed."""


class OutputClosed(RemoteMediaError):
    """The reader of an output went away (`remotemedia ... | head`): the run stops cleanly and
    the CLI exits quietly with 141 (128 + SIGPIPE), the status a shell reports for any Unix tool
    ended by a closed pipe."""

    exit_code = 141
    stop_reason = "output_closed"


def one_line(value: BaseException | str) -> str:
    """An exception (or its text) as one line for a screen, a log or a report: its first line
    with runs of whitespace collapsed (a remote worker's message may carry its traceback
    after it); an exception with no message gives its type's name, empty text 'unknown
    error'."""
    text = str(value).strip()
    if text:
        return " ".join(text.splitlines()[0].split())
    return type(value).__name__ if isinstance(value, BaseException) else "unknown error"
