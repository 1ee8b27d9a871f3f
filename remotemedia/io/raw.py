"""Raw PCM: interleaved float32 little-endian samples, no header, on stdin/stdout or a file.

RawSource reads straight into a fresh float32 buffer (no intermediate bytes object). Reading
stdin waits in short select() slices, so a stop request (Ctrl-C, SIGTERM, the TUI's stop
button) ends a read that would otherwise block until the writer sends more. At end of input the
last block is passed on short; trailing bytes that do not make a whole sample frame are dropped
with a note on stderr.

RawSink writes each frame with os.write, unbuffered, so a reader downstream gets audio as it is
produced. A frame that is already contiguous little-endian float32 is written from its own
memory; anything else is converted once (counted as an `io` copy).
"""

from __future__ import annotations

import os
import select
import sys
import threading
from pathlib import Path

import numpy as np

from ..engine.errors import OutputClosed, PipelineClosed, RemoteMediaError, UsageError
from ..engine.node import AudioFormat
from ..engine.levels import to_unit_float
from .base import Sink, Source

RAW_DTYPE = np.dtype("<f4")
_POLL_S = 0.1


def _name_raw_end(end, target: str, fmt: AudioFormat, stdio: str) -> None:
    """Set a raw end's `target`, `channels` (mono when the format leaves it open) and
    `description` ("raw f32le stdin/stdout" for `-`, else the file)."""
    end.target = target
    end.channels = fmt.channels or 1
    end.description = f"raw f32le {stdio}" if target == "-" else f"raw f32le {target}"


class RawSource(Source):
    """Interleaved float32 little-endian samples from stdin (`-`) or a file, in blocks of
    (block_size,) or (block_size, channels) float32; UsageError (exit 2) for a missing or
    unreadable file."""
    def __init__(self, target: str, fmt: AudioFormat):
        super().__init__(fmt)
        _name_raw_end(self, target, fmt, "stdin")
        if target != "-":
            path = Path(target)
            if not path.is_file():
                raise UsageError(f"raw input file not found: {target}")
            if not os.access(path, os.R_OK):
                raise UsageError(f"raw input file is not readable: {target}")
        self._shape = (fmt.block_size,) if self.channels == 1 else (fmt.block_size,
                                                                    self.channels)
        self._frame_bytes = RAW_DTYPE.itemsize * self.channels
        self._fd: int | None = None
        self._owns_fd = False
        self._interrupted = threading.Event()
        self._poll = False

    def open(self) -> None:
        """Take stdin's descriptor (polled, so a stop ends a waiting read) or open the file;
        UsageError when stdin is not readable."""
        if self.target == "-":
            try:
                self._fd = sys.stdin.fileno()
            except (AttributeError, ValueError, OSError) as exc:
                raise UsageError("raw:- needs a readable stdin") from exc
            self._poll = True
        else:
            self._fd = os.open(self.target, os.O_RDONLY)
            self._owns_fd = True

    def reads(self):
        """The file read (nothing for stdin), for the path check."""
        return [] if self.target == "-" else [("--input", self.target)]

    def interrupt(self) -> None:
        """Make a read waiting for input return what it has. Safe from a signal handler."""
        self._interrupted.set()

    def read(self) -> np.ndarray | None:
        """The next block, filled straight from the descriptor; short at the end (bytes that do
        not make a whole sample frame are dropped with a note); None at end of input or after
        interrupt(); PipelineClosed after close(). Runner's thread."""
        if self._fd is None:
            raise PipelineClosed(f"{self.description} is closed")
        block = np.empty(self._shape, dtype=RAW_DTYPE)
        view = memoryview(block).cast("B")
        want, got = view.nbytes, 0
        fd = self._fd
        while got < want and not self._interrupted.is_set():
            if self._poll:
                ready, _, _ = select.select((fd,), (), (), _POLL_S)
                if not ready:
                    continue
            try:
                n = os.readv(fd, (view[got:],))
            except InterruptedError:
                continue
            if n == 0:
                break
            got += n
        view.release()
        if got == want:
            return block
        whole = got - got % self._frame_bytes
        if whole != got:
            print(f"remotemedia: raw input ended inside a sample frame; dropped the last "
                  f"{got - whole} byte(s)", file=sys.stderr)
        if whole == 0:
            return None
        return block[:whole // self._frame_bytes]

    def close(self) -> None:
        """Close the file (stdin stays open). Safe twice."""
        fd, self._fd = self._fd, None
        if fd is not None and self._owns_fd:
            os.close(fd)


class RawSink(Sink):
    """Interleaved float32 little-endian samples to stdout (`-`) or a file, unbuffered; integer
    blocks scaled to full scale, NaN/Inf repaired and counted (io/base.py). UsageError (exit
    2) for a missing directory."""
    def __init__(self, target: str, fmt: AudioFormat):
        super().__init__(fmt)
        _name_raw_end(self, target, fmt, "stdout")
        if target != "-":
            parent = Path(target).parent
            if not parent.is_dir():
                raise UsageError(f"output directory does not exist: {parent}")
            if Path(target).is_dir():
                raise UsageError(f"output is a directory: {target}")
            from .safefile import check_output
            check_output(target, "--output")
        self._fd: int | None = None
        self._owns_fd = False

    @property
    def uses_stdout(self) -> bool:
        """True for `raw:-`: stdout then carries audio, so events and the report go elsewhere."""
        return self.target == "-"

    def writes(self):
        """The file written (nothing for stdout), for the path check."""
        return [] if self.target == "-" else [("--output", self.target)]

    def open(self) -> None:
        """Take stdout's descriptor, or create/truncate the file (UsageError if it cannot be)."""
        if self.target == "-":
            sys.stdout.flush()
            self._fd = sys.stdout.fileno()
        else:
            from .safefile import open_output_fd
            # never through a link someone else planted; a FIFO is opened as it is
            self._fd = open_output_fd(self.target, "--output")
            self._owns_fd = True

    def write(self, frame) -> None:
        """Write one frame's samples with os.write from its own memory when it is contiguous
        float32 (else one counted io copy). RemoteMediaError when the reader closed the pipe
        or the write fails, PipelineClosed after close(). Runner's thread."""
        array = self.checked_array(frame, self._fd is None, "raw output")
        if array.dtype.kind != "f":
            array = to_unit_float(array)   # int16 16384 is 0.5, never 16384.0
            self.count_io_copy()
        array = self.repair(array)
        if array.dtype != RAW_DTYPE or not array.flags.c_contiguous:
            array = np.ascontiguousarray(array, dtype=RAW_DTYPE)
            self.count_io_copy()
        view = memoryview(array).cast("B")
        try:
            written = 0
            while written < view.nbytes:
                written += os.write(self._fd, view[written:])
        except BrokenPipeError as exc:
            raise OutputClosed("raw output: the reader closed the pipe") from exc
        except OSError as exc:
            raise RemoteMediaError(f"raw output failed: {exc.strerror}") from exc
        finally:
            view.release()

    def close(self) -> None:
        """Close the file (stdout stays open). Safe twice."""
        fd, self._fd = self._fd, None
        if fd is not None and self._owns_fd:
            os.close(fd)
