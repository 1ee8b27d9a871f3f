"""Reading the WAV files that recorders and pipelines leave behind when they die.

libsndfile refuses or misreads some files that ffmpeg recovers:

- a data chunk whose size is 0 (a recorder that never came back to finalize its header, as
  arecord, OBS or a killed `remotemedia stream` leave; RIFF/WAVE says the size is the chunk's,
  so libsndfile reads 0 samples): ffmpeg reads to the end of the file;
- a chunk of odd size written without its pad byte (RIFF requires one; some writers skip it), so
  the next chunk header is one byte off and libsndfile finds no 'data' chunk;
- a data size larger than the file (truncated copies): both read what is there.

`locate_wav_data()` walks the chunks tolerantly (with and without pad bytes) and returns where
the samples are and how they are encoded, and `SampleWindow` shows soundfile just those bytes,
read as RAW, so the decoding (PCM of every width, float, A-law, u-law) stays libsndfile's.
Source: the RIFF/WAVE layout of Microsoft's "Multimedia Programming Interface and Data
Specifications 1.0" (1991) and the WAVE_FORMAT_EXTENSIBLE note (KSDATAFORMAT_SUBTYPE GUIDs).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass

from ..engine.errors import NotRecoverable

# wFormatTag -> the libsndfile RAW subtype, by bits per sample.
_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_PCM_SUBTYPES = {8: "PCM_U8", 16: "PCM_16", 24: "PCM_24", 32: "PCM_32"}
_FLOAT_SUBTYPES = {32: "FLOAT", 64: "DOUBLE"}
_HEADER_LIMIT = 1 << 20   # chunks before 'data' beyond this are not a header any recorder writes


@dataclass(frozen=True)
class WavData:
    """Where a WAV file's samples are: byte `offset` and `length` (whole frames only), and
    their encoding as a libsndfile RAW `subtype` with `samplerate` and `channels`."""

    offset: int
    length: int
    subtype: str
    samplerate: int
    channels: int
    frame_bytes: int
    #: whole frames the header's data size declares; None where it declares none (0 or
    #: 0xFFFFFFFF, as streaming writers and RF64 leave it)
    declared_frames: int | None = None

    @property
    def frames(self) -> int:
        """Whole sample frames (one sample per channel) in the data."""
        return self.length // self.frame_bytes


def _subtype(tag: int, bits: int, fmt: bytes) -> str:
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]   # first two bytes of the subformat GUID
    if tag == _PCM and bits in _PCM_SUBTYPES:
        return _PCM_SUBTYPES[bits]
    if tag == _FLOAT and bits in _FLOAT_SUBTYPES:
        return _FLOAT_SUBTYPES[bits]
    if tag == _ALAW and bits == 8:
        return "ALAW"
    if tag == _ULAW and bits == 8:
        return "ULAW"
    raise NotRecoverable(f"its samples are encoded as format 0x{tag:04x} with {bits} bits, "
                         f"which cannot be recovered without a valid header")


def locate_wav_data(path: str | bytes | os.PathLike) -> WavData:
    """Find the fmt and data chunks of a RIFF/WAVE file, tolerating a zero or oversized data
    size and unpadded odd-sized chunks. Raises NotRecoverable (one line) or OSError."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(min(size, _HEADER_LIMIT))
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise NotRecoverable("it is not a RIFF/WAVE file")
    fmt = None
    pos = 12
    while pos + 8 <= len(head):
        cid, csize = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if cid == b"data":
            if fmt is None:
                raise NotRecoverable("its data chunk comes before any fmt chunk")
            return _data(fmt, pos + 8, csize, size)
        if cid == b"fmt ":
            fmt = head[pos + 8:pos + 8 + csize]
            if len(fmt) < 16:
                raise NotRecoverable("its fmt chunk is truncated")
        elif not _printable(cid):
            raise NotRecoverable(f"chunk headers are damaged at byte {pos}")
        nxt = pos + 8 + csize
        # A writer that skipped the pad byte of an odd chunk: the next header is at nxt.
        if csize & 1 and not (nxt + 4 <= len(head) and _printable(head[nxt + 1:nxt + 5])):
            pos = nxt
        else:
            pos = nxt + (csize & 1)
    raise NotRecoverable("it has no data chunk" if fmt is not None else "it has no fmt chunk")


def _printable(cid: bytes) -> bool:
    return len(cid) == 4 and all(32 <= c < 127 for c in cid)


def _data(fmt: bytes, offset: int, declared: int, file_size: int) -> WavData:
    tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", fmt, 0)
    if channels == 0 or rate == 0:
        raise NotRecoverable(f"its fmt chunk says {channels} channel(s) at {rate} Hz")
    subtype = _subtype(tag, bits, fmt)
    frame_bytes = channels * ((bits + 7) // 8)
    if align and align != frame_bytes:
        raise NotRecoverable(f"its fmt chunk is inconsistent (block align {align}, expected "
                             f"{frame_bytes})")
    present = max(0, file_size - offset)
    # 0 and 0xFFFFFFFF are what streaming writers leave; anything past the end is truncation.
    length = present if declared in (0, 0xFFFFFFFF) or declared > present else declared
    length -= length % frame_bytes
    stated = None if declared in (0, 0xFFFFFFFF) else declared // frame_bytes
    return WavData(offset, length, subtype, rate, channels, frame_bytes, stated)


class SampleWindow(io.RawIOBase):
    """A read-only file object showing only bytes [offset, offset + length) of a file, so that
    soundfile can read them as RAW. Seekable; positions are relative to `offset`."""

    def __init__(self, path, offset: int, length: int):
        super().__init__()
        self._fh = open(path, "rb")
        self._offset = offset
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """Always True: libsndfile seeks while it reads."""
        return True

    def tell(self) -> int:
        """The position in bytes from the window's start."""
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        """Move within the window (clamped to it); returns the new position."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, min(self._length, base + pos))
        return self._pos

    def readinto(self, buffer) -> int:
        """Read into `buffer` up to the window's end; returns the bytes read."""
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        self._fh.seek(self._offset + self._pos)
        got = self._fh.readinto(memoryview(buffer)[:want])
        self._pos += got
        return got

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that is left for -1 or None)."""
        if size is None or size < 0:
            size = self._length - self._pos
        buf = bytearray(max(0, min(size, self._length - self._pos)))
        n = self.readinto(buf)
        return bytes(buf[:n])

    def close(self) -> None:
        """Close the underlying file. Safe twice."""
        if not self.closed:
            self._fh.close()
        super().close()
