"""The fmt chunk of a finished WAV, in the form every reader takes without a warning.

libsndfile writes RF64 (so a recording of any length reads back whole) and, when the file
stayed under 4 GiB, turns it into a plain RIFF WAV at close. The fmt chunk it leaves is
WAVE_FORMAT_EXTENSIBLE (40 bytes) whatever the layout, and for float samples sox then warns
"wave header missing extended part of fmt chunk": sox reads a cbSize after the 22 extension
bytes of every format but PCM, A-law and u-law. tidy_wav_header() rewrites the fmt chunk in
place, the data never moving:

- mono or stereo with the default channel mask (or none): a plain WAVEFORMATEX, as ffmpeg
  writes it: 16 bytes for PCM, 18 (cbSize 0) for float and the companded formats; the bytes
  freed become a JUNK chunk after it;
- any other layout keeps WAVE_FORMAT_EXTENSIBLE (its channel mask means something); a float
  one gets two more bytes (a cbSize of 0, which sox reads), taken from the JUNK chunk
  libsndfile leaves before it.

Anything else (an RF64 over 4 GiB, a header of another shape) is left as it is.
"""

from __future__ import annotations

import os
import struct

_EXTENSIBLE = 0xFFFE
_PCM, _FLOAT, _ALAW, _MULAW = 0x0001, 0x0003, 0x0006, 0x0007
#: the channel mask libsndfile writes by default: front centre, front left | right
_DEFAULT_MASK = {1: 0x4, 2: 0x3}
_HEAD = 512    # libsndfile's header ends well before this (fmt, fact, PEAK, then data)


def tidy_wav_header(fd: int, keep_mask: bool = False) -> bool:
    """Rewrite the fmt chunk of the finished WAV open (read/write) on `fd` as the module says;
    with `keep_mask` (a channel mask carried over from the input) the EXTENSIBLE form stays
    whatever the layout. True when it changed something. OSError from the reads and
    writes."""
    head = os.pread(fd, _HEAD, 0)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    chunks = []
    pos = 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        chunks.append((cid, pos, size))
        if cid == b"data":
            break
        pos += 8 + size + (size & 1)
    ids = [c[0] for c in chunks]
    if b"fmt " not in ids:
        return False
    i = ids.index(b"fmt ")
    _, at, size = chunks[i]
    if size != 40 or at + 48 > len(head):
        return False
    tag, channels, rate, byte_rate, align, bits, cb, valid, mask, sub = struct.unpack_from(
        "<HHIIHHHHIH", head, at + 8)
    if tag != _EXTENSIBLE or cb != 22 or valid != bits:
        return False
    if not keep_mask and channels in _DEFAULT_MASK and mask in (0, _DEFAULT_MASK[channels]):
        plain = struct.pack("<HHIIHH", sub, channels, rate, byte_rate, align, bits)
        if sub != _PCM:
            plain += struct.pack("<H", 0)                    # cbSize
        freed = 40 - len(plain)                              # 24 or 22: room for a JUNK
        new = (b"fmt " + struct.pack("<I", len(plain)) + plain
               + b"JUNK" + struct.pack("<I", freed - 8) + bytes(freed - 8))
        os.pwrite(fd, new, at)
        return True
    if sub in (_PCM, _ALAW, _MULAW):
        return False                                         # sox reads these silently
    if i == 0 or chunks[i - 1][0] != b"JUNK" or chunks[i - 1][2] < 2:
        return False
    _, junk_at, junk_size = chunks[i - 1]
    body = head[at + 8:at + 48] + struct.pack("<H", 0)       # the extension, then a cbSize
    new = (b"JUNK" + struct.pack("<I", junk_size - 2) + bytes(junk_size - 2)
           + b"fmt " + struct.pack("<I", 42) + body)
    os.pwrite(fd, new, junk_at)
    return True
