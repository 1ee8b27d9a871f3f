"""Text inputs: `text:STRING` and `text:@FILE` (one utterance per line).

    text:Hello there        the string (its line breaks separate utterances)
    text:@notes.txt         the file, UTF-8 (a leading BOM is skipped), one utterance a line
    text:@@at sign          the string "@at sign" (a leading @@ stands for a literal @)

The source emits RuntimeData.Text frames, one per sentence-sized piece of each line
(remotemedia.sentences), so a long text streams: the runner pushes one piece, delivers the
audio it became, then reads the next, and nothing holds more than a piece (and whatever an
executor's bounded queue holds). Blank lines say nothing. An empty text is a run with no
audio: the output is a valid, empty WAV (0 frames) and the run ends at once with exit 0.

Pacing. Text has no clock of its own: the source is not clocked and stands in for no device.
To a file the run goes as fast as the speech can be synthesized; to a sound device the runner
runs in real time and the device's queue paces the audio (a full queue makes the sink wait).
The run ends when the text is used up and the graph has been sent end_of_stream, i.e. when
everything has been spoken. `--duration` counts Text frames, not audio, so give none.

A file is checked when the source is made, before anything is opened for writing: one that is
missing, unreadable or not UTF-8 is a UsageError (exit 2) naming the file and, for bad UTF-8, the
byte offset. It is then read line by line, so a file of any length needs no more memory than
its longest line, and a line longer than MAX_LINE characters is taken MAX_LINE at a time.

A FIFO, `/dev/stdin` or another file that is not a regular one can be read only once and may
never end (`/dev/zero`): it is opened and read once when the run opens its input (before any
output is opened), at most MAX_PIPED_BYTES of it, and a longer text or one that is not UTF-8
is a UsageError naming it.
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import Iterator

from ..engine.data import TextData
from ..engine.errors import UsageError
from ..engine.node import AudioFormat
from ..sentences import sentences
from .base import Source

_CHECK_CHUNK = 1 << 16
#: characters of one line taken at a time (a file with no line break is still read in pieces)
MAX_LINE = 1 << 16
#: the most read from a text file that is not a regular file (a pipe, /dev/zero): 1 MiB,
#: some 19 hours of speech
MAX_PIPED_BYTES = 1 << 20


class TextSource(Source):
    """Text frames from a string or a UTF-8 file (module docstring); `read()` returns
    TextData (pts None, metadata {"line": n}, n counting from 1) or None at the end."""

    realtime = False
    clocked = False
    endless = False

    def __init__(self, fmt: AudioFormat, *, text: str | None = None, path: Path | None = None):
        super().__init__(fmt)
        if (text is None) == (path is None):
            raise ValueError("give text or path")
        self.text = text
        self.path = path
        #: the text file is a FIFO, a pipe or a device: read once, bounded, at open()
        self.piped = False
        if path is not None:
            self.piped = _not_regular(path)
            if not self.piped:
                check_utf8(path)      # reading it all would empty a FIFO: see open()
            self.description = f"text file {path}"
        else:
            shown = text if len(text) <= 24 else text[:21] + "..."
            self.description = f"text {shown!r}"
        #: Text frames emitted so far
        self.frames = 0
        self._pieces: Iterator[TextData] | None = None
        self._file = None

    def reads(self):
        """The text file, so no run writes over it."""
        return [("input text", self.path)] if self.path is not None else []

    def open(self) -> None:
        """Opens the file (if any) for reading line by line."""
        if self.path is not None and self.piped:
            lines = iter(_read_piped(self.path).splitlines())
        elif self.path is not None:
            self._file = open(self.path, encoding="utf-8-sig", newline=None)
            lines = iter(lambda: self._file.readline(MAX_LINE), "")
        else:
            lines = iter(self.text.splitlines())
        self._pieces = self._frames(lines)

    def _frames(self, lines) -> Iterator[TextData]:
        for number, line in enumerate(lines, 1):
            for piece in sentences(line):
                yield TextData(piece, metadata={"line": number})

    def read(self):
        """The next piece as TextData, or None when the text is used up."""
        if self._pieces is None:
            self.open()
        piece = next(self._pieces, None)
        if piece is not None:
            self.frames += 1
        return piece

    def close(self) -> None:
        """Closes the file; safe twice."""
        if self._file is not None:
            self._file.close()
            self._file = None


def check_utf8(path: Path) -> None:
    """UsageError (exit 2) if `path` cannot be read or is not UTF-8, naming the file and the
    byte offset of the first bad byte. Reads in 64 KiB chunks: memory stays flat."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    try:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(_CHECK_CHUNK)
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    # exc.start counts in the decoder's buffer: a partial sequence carried
                    # over from the last chunk sits in front of this one
                    carried = len(exc.object) - len(chunk)
                    at = offset - carried + exc.start
                    raise UsageError(f"text file {path} is not UTF-8: byte {at} "
                                     f"(0x{exc.object[exc.start]:02x}) {exc.reason}") from None
                if not chunk:
                    return
                offset += len(chunk)
    except FileNotFoundError:
        raise UsageError(f"text file {path} not found") from None
    except IsADirectoryError:
        raise UsageError(f"text file {path} is a directory") from None
    except OSError as exc:
        raise UsageError(f"text file {path} cannot be read: {exc.strerror or exc}") from None


def _not_regular(path: Path) -> bool:
    """True for a path that exists and is not a regular file (a FIFO, a character device, a
    pipe behind /dev/stdin); a missing or unreadable one is check_utf8's to name."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not stat.S_ISDIR(
            os.stat(path).st_mode)
    except OSError:
        return False


def _read_piped(path: Path) -> str:
    """All of a text that is not a regular file, read once: at most MAX_PIPED_BYTES, UTF-8 (a
    BOM skipped). UsageError (exit 2) naming the file when it is longer, not UTF-8 or cannot
    be read."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PIPED_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"text file {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_PIPED_BYTES:
        raise UsageError(f"text file {path} is not a regular file and holds more than "
                         f"{MAX_PIPED_BYTES:,} bytes (the most read from a pipe or a device)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"text file {path} is not UTF-8: byte {exc.start} "
                         f"(0x{data[exc.start]:02x}) {exc.reason}") from None


def text_source(spec: str, arg: str | None, fmt: AudioFormat) -> TextSource:
    """The Source for `text:ARG` (module docstring); UsageError for `text:@` without a file."""
    arg = arg or ""
    if arg.startswith("@@"):
        return TextSource(fmt, text=arg[1:])
    if arg.startswith("@"):
        if not arg[1:].strip():
            raise UsageError(f"bad input SPEC '{spec}': text:@ needs a file, as in "
                             f"text:@notes.txt")
        return TextSource(fmt, path=Path(arg[1:]).expanduser())
    return TextSource(fmt, text=arg)
