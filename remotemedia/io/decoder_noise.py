"""What the C decoders under libsndfile print, kept off the user's stderr and said in one line.

libsndfile itself never prints, but the mpg123 it decodes MP3 with writes notes straight to the
process's file descriptor 2 ("Warning: Xing stream size off by more than 1%, fuzzy seeking may
be even more fuzzy than by design!", "Note: Trying to resync..."), and neither libsndfile nor
soundfile has a switch for it (libsndfile keeps the mpg123 handle to itself). So the calls that
parse a file's header (sf.info, opening a SoundFile: where mpg123 reads the Xing frame) run with
fd 2 pointed at a temporary file; what the decoder said comes back as short lines for one note,
and anything else written to fd 2 meanwhile (another thread's line) is written back unchanged.
Reads are not wrapped: they run once a block, where redirecting would cost two system calls.

problem(exc): soundfile's error without its `b'/path'` repr (callers name the path as typed).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager

import soundfile as sf

# mpg123's own prefixes: "Note: ", "Warning: ", "[src/libmpg123/parse.c:123] warning: "
_DECODER_LINE = re.compile(r"^(?:\[[^\]]*libmpg123[^\]]*\]\s*)?(note|warning|error):\s*(.*)$",
                           re.IGNORECASE)


def problem(exc: BaseException) -> str:
    """The one-line reason of a soundfile/libsndfile error, without soundfile's
    "Error opening b'/path': " prefix (a bytes repr of the path we passed)."""
    text = getattr(exc, "error_string", None) if isinstance(exc, sf.LibsndfileError) else None
    if not text:
        text = str(exc)
    return " ".join(text.split()).rstrip(".") or type(exc).__name__


@contextmanager
def decoder_notes(into: list[str]):
    """Run the block with fd 2 captured; append what a decoder said to `into` (each message
    once, prefixes stripped), and write anything else back to fd 2."""
    try:
        saved = os.dup(2)
    except OSError:
        yield into
        return
    capture = tempfile.TemporaryFile()
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(capture.fileno(), 2)
    try:
        yield into
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
        capture.close()
        _sort(text, into)


def _sort(text: str, into: list[str]) -> None:
    others = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _DECODER_LINE.match(line.strip())
        if m is None:
            others.append(line)
            continue
        message = m.group(2).strip().rstrip("!.")
        if message and message not in into:
            into.append(message)
    if others:
        try:
            os.write(2, ("\n".join(others) + "\n").encode("utf-8", "replace"))
        except OSError:
            pass
