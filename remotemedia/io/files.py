"""Audio files through soundfile (libsndfile is bundled in its wheel).

WavSource reads any file libsndfile reads (WAV of any subtype, and FLAC, AIFF, ...), as float32
blocks of the manifest's block size. A file whose sample rate or channel count differs from the
manifest's is refused when the SPEC is parsed, never reinterpreted. The last block is passed on
short (not padded), so file -> passthrough -> file gives back exactly the input's samples.

WavSink writes WAV, 32-bit float unless a subtype is named, so a float round trip is sample
exact. Closing it (on every path the runner ends by) finalizes the header with every frame
written so far.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from ..engine.errors import RemoteMediaError, UsageError
from ..engine.node import AudioFormat
from .base import Sink, Source

DEFAULT_SUBTYPE = "FLOAT"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class WavSource(Source):
    def __init__(self, path: str | os.PathLike, fmt: AudioFormat):
        super().__init__(fmt)
        self.path = Path(path)
        self.description = f"file {self.path}"
        if not self.path.exists():
            raise UsageError(f"input file not found: {self.path}")
        if self.path.is_dir():
            raise UsageError(f"input is a directory, not an audio file: {self.path}")
        if not os.access(self.path, os.R_OK):
            raise UsageError(f"input file is not readable: {self.path}")
        try:
            info = sf.info(str(self.path))
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise UsageError(f"cannot read {self.path} as audio: {_one_line(exc)}") from exc
        self.info = info
        if fmt.sample_rate is not None and info.samplerate != fmt.sample_rate:
            raise UsageError(
                f"{self.path} is {info.samplerate} Hz but the manifest runs at "
                f"{fmt.sample_rate} Hz (resample the file or set audio.sample_rate)")
        if fmt.channels is not None and info.channels != fmt.channels:
            raise UsageError(
                f"{self.path} has {info.channels} channel(s) but the manifest expects "
                f"{fmt.channels} (convert the file or set audio.channels)")
        self.channels = info.channels
        self.frames = info.frames
        self._file: sf.SoundFile | None = None

    def open(self) -> None:
        try:
            self._file = sf.SoundFile(str(self.path), "r")
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise UsageError(f"cannot open {self.path}: {_one_line(exc)}") from exc

    def read(self) -> np.ndarray | None:
        # soundfile allocates each block; it is ours to hand over to the engine.
        block = self._file.read(self.format.block_size, dtype="float32", always_2d=False)
        if block.shape[0] == 0:
            return None
        return block

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()


class WavSink(Sink):
    def __init__(self, path: str | os.PathLike, fmt: AudioFormat,
                 subtype: str = DEFAULT_SUBTYPE):
        super().__init__(fmt)
        self.path = Path(path)
        self.subtype = subtype
        self.description = f"file {self.path} ({subtype})"
        if self.path.suffix.lower() != ".wav":
            raise UsageError(f"output file must be named *.wav (WAV is what it writes): "
                             f"{self.path}")
        if not sf.check_format("WAV", subtype):
            raise UsageError(f"WAV cannot hold subtype '{subtype}' (try one of: "
                             f"{', '.join(sorted(sf.available_subtypes('WAV')))})")
        parent = self.path.parent
        if not parent.is_dir():
            raise UsageError(f"output directory does not exist: {parent}")
        if self.path.is_dir():
            raise UsageError(f"output is a directory: {self.path}")
        if not os.access(parent, os.W_OK) or (self.path.exists()
                                              and not os.access(self.path, os.W_OK)):
            raise UsageError(f"output file is not writable: {self.path}")
        self.channels = fmt.channels or 1
        self.samples_written = 0
        self._file: sf.SoundFile | None = None
        self._counters = None

    def attach(self, session) -> None:
        self._counters = session.counters

    def open(self) -> None:
        try:
            self._file = sf.SoundFile(str(self.path), "w", samplerate=self.format.sample_rate,
                                      channels=self.channels, subtype=self.subtype,
                                      format="WAV")
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise UsageError(f"cannot create {self.path}: {_one_line(exc)}") from exc

    def write(self, frame) -> None:
        array = frame.array
        channels = array.shape[1] if array.ndim == 2 else 1
        if channels != self.channels or array.ndim > 2:
            raise RemoteMediaError(f"a frame of shape {array.shape} reached output, but "
                                   f"{self.path} was opened for {self.channels} channel(s)")
        if not array.flags.c_contiguous and self._counters is not None:
            self._counters.io += 1  # soundfile makes it contiguous: one copy at the boundary
        try:
            self._file.write(array)
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise RemoteMediaError(f"writing {self.path} failed: {_one_line(exc)}") from exc
        self.samples_written += array.shape[0]

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()  # rewrites the header with the final length
