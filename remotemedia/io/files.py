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

import errno
import functools
import io
import os
import stat
from pathlib import Path

import numpy as np
import soundfile as sf

from ..engine.errors import PipelineClosed, RemoteMediaError, UsageError
from ..engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE, AudioFormat
from ..engine.levels import to_unit_float
from .base import Sink, Source
from .decoder_noise import decoder_notes, problem as sf_problem
from .wavrecover import NotRecoverable, SampleWindow, WavData, locate_wav_data

DEFAULT_SUBTYPE = "FLOAT"


def _fs(path: Path) -> bytes:
    # soundfile encodes str paths as UTF-8 and fails on names that are not (caf\xe9.wav, taken
    # from argv as a surrogate escape): hand it the bytes the shell gave us.
    return os.fsencode(path)


class SequentialSoundFile(sf.SoundFile):
    """A soundfile.SoundFile opened for reading front to back, never seeking.

    soundfile's read() asks libsndfile for the position before every read and seeks to
    `position + frames` after it (SoundFile._cdata_io). For PCM that is free; for MPEG audio
    libsndfile hands the absolute seek to mpg123, which restarts decoding cold at the target
    frame (the bit reservoir of the frames before it is gone), so an MP3 read in 960-frame
    blocks came back as silence after its first 0.1 s while a one-shot read was right. Reporting
    the file as not seekable makes soundfile call libsndfile's sf_readf_* and nothing else, which
    is also what a pipe needs. Use read(frames) with frames >= 0."""

    def seekable(self) -> bool:
        """False: this reader never seeks (see the class)."""
        return False


# sndfile.h: a file's channel map (SF_CHANNEL_MAP_* per channel), which libsndfile reads from
# and writes to a WAVE_FORMAT_EXTENSIBLE channel mask (and CAF/AIFF channel layouts).
_SFC_GET_CHANNEL_MAP_INFO = 0x1100
_SFC_SET_CHANNEL_MAP_INFO = 0x1101


def channel_map(f: sf.SoundFile) -> tuple[int, ...] | None:
    """The SF_CHANNEL_MAP_* value of each channel of an open file (libsndfile reads a WAV's
    channel mask into it), or None when the file declares none."""
    out = sf._ffi.new("int[]", f.channels)
    ok = sf._snd.sf_command(f._file, _SFC_GET_CHANNEL_MAP_INFO, out, sf._ffi.sizeof(out))
    return tuple(out) if ok == sf._snd.SF_TRUE else None


def carry_input_facts(source: Source, sink: Sink, unchanged: bool,
                      samples_unchanged: bool = False) -> None:
    """What a file input declares about itself (its channel map, so a WAV's channel mask, and
    its text tags: title, artist, comment, ...) goes into a file output when the graph leaves
    the format as it found it (`unchanged`: the output's rate and channels are the input's).
    When the graph leaves the samples themselves as they were (`samples_unchanged`:
    graph_keeps_samples(), and the input was not converted on its way in), the output also
    keeps the input's sample format (16-bit PCM in, 16-bit PCM out) unless the output SPEC
    named one. Call before the sink opens; other ends are left alone."""
    if not (unchanged and isinstance(source, WavSource) and isinstance(sink, WavSink)):
        return
    if source.channels == sink.channels and source.conversion is None:
        sink.channel_map = source.channel_map
        sink.tags = dict(source.tags)
        if samples_unchanged:
            sink.keep_subtype(source.subtype)


def graph_keeps_samples(manifest) -> bool:
    """Whether every audio path to `output` comes from `input` through nodes that pass audio
    on as it came (a node class with `keeps_samples = True`: PassThrough, LevelMeter), so the
    samples written are the samples read. Duck-typed on a validated Manifest's
    `connections` and `node(id).node_class`."""
    feeding = {}
    for c in manifest.connections:
        feeding.setdefault(c.target, []).append(c.source)
    seen, todo = set(), ["output"]
    while todo:
        target = todo.pop()
        for source in feeding.get(target, ()):
            if source == "input" or source in seen:
                continue
            if not getattr(manifest.node(source).node_class, "keeps_samples", False):
                return False
            seen.add(source)
            todo.append(source)
    return bool(feeding.get("output"))


#: libsndfile reports SF_COUNT_MAX frames for a stream it cannot measure (a pipe)
_UNKNOWN_LENGTH = 1 << 62
_RIFF_FORMATS = frozenset({"WAV", "WAVEX", "RF64"})


#: a RIFF data size at or past this many bytes, written to a pipe, declares no length: sox
#: writes 0x7ffff000 there and ffmpeg 0xffffffff, as neither can seek back to fill it in
_RIFF_UNKNOWN_BYTES = 0x7FFFF000
_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3,
                 "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _streamed_riff(f) -> bool:
    """True for a WAV read from a pipe whose header holds a streaming writer's "length
    unknown" data size rather than a length (libsndfile reports it as frames)."""
    if f.format not in _RIFF_FORMATS:
        return False
    size = _SAMPLE_BYTES.get(f.subtype)
    if size is None:
        return f.frames >= 0x7FFFFFFF
    return f.frames * f.channels * size >= _RIFF_UNKNOWN_BYTES - 4 * f.channels


class WavSource(Source):
    """Blocks of a file libsndfile reads, as float32 `(block_size,)` or
    `(block_size, channels)`; the last one short. A WAV whose header a dying recorder left
    unfinished (data size 0, unpadded odd chunks) is recovered as ffmpeg would
    (io/wavrecover.py); what cannot be read is a UsageError naming why (exit 2).

    The file is read once, front to back, never seeking (SequentialSoundFile). A path that is
    not a regular file (a FIFO, /dev/stdin) is opened here, once, and read from there on, so a
    pipe's header is not consumed by a probe. An input that ends before the samples its header
    declares (a truncated copy, a file cut while it was read, a stream that breaks off or a
    decoder error after the start) ends the input there: `shortfall` then says in one line how
    many samples and seconds were missing, and the stats report gets an `input` section.

    `samplerate`, `channels`: the file's own; `frames`: what libsndfile finds in it (0 for a
    pipe that does not say); `declared_frames`: what its header declares (None when it declares
    nothing); `read_frames`: what was read so far; `channel_map` (SF_CHANNEL_MAP_* per
    channel, from a WAV's channel mask; None if it declares none) and `tags` (title, artist,
    ...), for carry_input_facts(). `fmt` may leave rate and channels None (a
    probe for the file's own format); conform() checks them against the run's."""

    def __init__(self, path: str | os.PathLike, fmt: AudioFormat = AudioFormat()):
        super().__init__(fmt)
        self.path = Path(path)
        self.description = f"file {self.path}"
        if not self.path.exists():
            raise UsageError(f"input file not found: {self.path}")
        if self.path.is_dir():
            raise UsageError(f"input is a directory, not an audio file: {self.path}")
        if not os.access(self.path, os.R_OK):
            raise UsageError(f"input file is not readable: {self.path}")
        self.recovered: WavData | None = None
        self._file: sf.SoundFile | None = None
        self.read_frames = 0
        self.shortfall: str | None = None
        self._shortfall_report: dict | None = None
        self._ended = False
        self.channel_map: tuple[int, ...] | None = None
        self.tags: dict[str, str] = {}
        #: what the decoder under libsndfile said while the header was read (mpg123's "Xing
        #: stream size off by more than 1%"), each once; kept off stderr (io/decoder_noise.py)
        self.decoder_notes: list[str] = []
        self._notes_told = 0
        #: the file's own sample format ('PCM_16', 'FLOAT', 'VORBIS', ...; None if unknown)
        self.subtype: str | None = None
        self.converter = None
        self._ready: list[np.ndarray] = []     # converted blocks not yet handed out
        self._copies_counted = 0
        #: what conform() converts, in words ('22050 Hz -> 48000 Hz (soxr HQ)'), or None
        self.conversion: str | None = None
        self._counters = None
        if stat.S_ISREG(os.stat(self.path).st_mode):
            self._probe()
        else:
            self._open_stream()
        self.conform(fmt)

    def _probe(self) -> None:
        try:
            with decoder_notes(self.decoder_notes):   # mpg123 parses the Xing frame here
                info = sf.info(_fs(self.path))
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            info = None
            problem = sf_problem(exc)
        if info is None or (info.frames == 0 and info.format in _RIFF_FORMATS):
            # libsndfile refused it, or found no samples in a file that may hold some.
            try:
                self.recovered = locate_wav_data(_fs(self.path))
            except NotRecoverable as why:
                if info is not None:
                    self.recovered = None   # a genuinely empty WAV
                else:
                    raise UsageError(f"cannot read {self.path} as audio: {problem}; {why}") \
                        from None
            except OSError as exc:
                raise UsageError(f"cannot read {self.path}: {exc.strerror}") from None
            if self.recovered is not None and self.recovered.frames == 0:
                self.recovered = None
        if self.recovered is not None:
            r = self.recovered
            self.samplerate, self.channels, self.frames = r.samplerate, r.channels, r.frames
            self.declared_frames = r.declared_frames
            self.subtype = r.subtype
            return
        self.samplerate, self.channels, self.frames = info.samplerate, info.channels, info.frames
        self.subtype = info.subtype
        # libsndfile trims a RIFF data size larger than the file to what is there: the header's
        # own claim is read here. Other formats' counts are their headers' (FLAC STREAMINFO,
        # an MP3's Xing frame), and reading stops short of them.
        self.declared_frames = info.frames
        if info.format in _RIFF_FORMATS:
            try:
                stated = locate_wav_data(_fs(self.path)).declared_frames
            except (NotRecoverable, OSError):
                stated = None
            if stated is not None and stated > info.frames:
                self.declared_frames = stated
        try:
            with decoder_notes(self.decoder_notes), sf.SoundFile(_fs(self.path)) as f:
                self._facts(f)
        except (sf.SoundFileError, RuntimeError, OSError):
            pass    # the facts are a courtesy; reading it is what open() and read() report

    def _facts(self, f: sf.SoundFile) -> None:
        self.channel_map = channel_map(f)
        self.tags = {k: v for k, v in f.copy_metadata().items() if v}

    def _open_stream(self) -> None:
        try:
            with decoder_notes(self.decoder_notes):
                self._file = SequentialSoundFile(_fs(self.path), "r")
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise UsageError(f"cannot read {self.path} as audio: {sf_problem(exc)}") from None
        f = self._file
        self._facts(f)
        self.samplerate, self.channels = f.samplerate, f.channels
        self.subtype = f.subtype
        known = 0 < f.frames < _UNKNOWN_LENGTH and not _streamed_riff(f)
        self.frames = f.frames if known else 0
        self.declared_frames = f.frames if known else None

    def conform(self, fmt: AudioFormat, exact: bool = True) -> "WavSource":
        """Run in `fmt`. A file at another rate or channel count is refused (`exact`, the
        default: UsageError, exit 2), or converted on its way in (io/convert.py: soxr for the
        rate, a declared channel mix), when `exact` is False; `conversion` then says what is
        converted, in words, for the caller's one note. A pair of channel counts with no
        declared mix is refused either way. Returns self."""
        self.format = fmt
        self.converter = None
        self.conversion = None
        rate_off = fmt.sample_rate is not None and self.samplerate != fmt.sample_rate
        channels_off = fmt.channels is not None and self.channels != fmt.channels
        if not (rate_off or channels_off):
            return self
        if exact:
            if rate_off:
                raise UsageError(
                    f"{self.path} is {self.samplerate} Hz but the manifest runs at "
                    f"{fmt.sample_rate} Hz (resample the file or set audio.sample_rate)")
            raise UsageError(
                f"{self.path} has {self.channels} channel(s) but the manifest expects "
                f"{fmt.channels} (convert the file or set audio.channels)")
        from .convert import Converter, UnsupportedMix
        try:
            self.converter = Converter(self.samplerate, self.channels,
                                       fmt.sample_rate or self.samplerate,
                                       fmt.channels or self.channels,
                                       fmt.block_size or DEFAULT_BLOCK_SIZE)
        except UnsupportedMix as why:
            raise UsageError(f"{self.path} has {self.channels} channels but the manifest "
                             f"expects {fmt.channels}: {why}") from None
        self.conversion = self.converter.describe()
        return self

    def new_notes(self) -> str | None:
        """What the decoder said since the last call, as one line naming the file, or
        None."""
        fresh = self.decoder_notes[self._notes_told:]
        self._notes_told = len(self.decoder_notes)
        if not fresh:
            return None
        return f"{self.path}: the decoder says: {'; '.join(fresh)}"

    def attach(self, session) -> None:
        """Keep the session's counters: a conversion counts its arrays as `io` copies."""
        self._counters = session.counters

    def reads(self):
        """The input file, for the path check."""
        return [("--input", self.path)]

    def open(self) -> None:
        """Open the file (recovered headers through SampleWindow; a pipe is open already);
        UsageError (exit 2) if it cannot be opened."""
        if self._file is not None:
            return
        try:
            if self.recovered is None:
                with decoder_notes(self.decoder_notes):
                    self._file = SequentialSoundFile(_fs(self.path), "r")
            else:
                r = self.recovered
                self._file = SequentialSoundFile(
                    SampleWindow(_fs(self.path), r.offset, r.length), "r", format="RAW",
                    subtype=r.subtype, samplerate=r.samplerate, channels=r.channels,
                    endian="LITTLE")
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise UsageError(f"cannot open {self.path}: {sf_problem(exc)}") from exc

    def read(self) -> np.ndarray | None:
        # soundfile allocates each block; it is ours to hand over to the engine.
        """The next block as float32 (block_size,) or (block_size, channels), owned by the
        caller, in the run's format (converted when conform() set a conversion); short at
        the end; None after it. A decoder error after the first samples ends the input there
        (see `shortfall`); RemoteMediaError when not even the first block can be read;
        PipelineClosed after close()."""
        ready = self._ready
        if self.converter is None and not ready:
            return self._read_file()
        while not ready:
            block = self._read_file()
            if block is None:
                if self.converter is None:
                    return None
                ready.extend(self.converter.finish())
                self._count_copies()
                self.converter = None    # finished: what is left is in `ready`
                break
            ready.extend(self.converter.push(block))
            self._count_copies()
        return ready.pop(0) if ready else None

    def _count_copies(self) -> None:
        made = self.converter.copies if self.converter is not None else self._copies_counted
        if self._counters is not None and made > self._copies_counted:
            self._counters.io += made - self._copies_counted
        self._copies_counted = made

    def _read_file(self) -> np.ndarray | None:
        if self._ended:
            return None
        if self._file is None:
            raise PipelineClosed(f"{self.path} is closed")
        try:
            block = self._file.read(self.format.block_size, dtype="float32", always_2d=False)
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            if self.read_frames == 0:
                raise RemoteMediaError(f"reading {self.path} failed: {sf_problem(exc)}") \
                    from exc
            self._end(problem=sf_problem(exc))
            return None
        if block.shape[0] == 0:
            self._end()
            return None
        self.read_frames += block.shape[0]
        return block

    def _end(self, problem: str | None = None) -> None:
        # Once, at the end of input: compare what was read with what the header declared.
        self._ended = True
        declared, got, rate = self.declared_frames, self.read_frames, self.samplerate
        short = declared is not None and got < declared
        if not short and problem is None:
            return
        line = f"{self.path}: the input ended after {got} samples ({got / rate:.3f} s)"
        if short:
            missing = declared - got
            line = (f"{self.path}: the input ended after {got} of the {declared} samples its "
                    f"header declares: {missing} samples ({missing / rate:.3f} s) missing")
        if problem is not None:
            line += f" (decoding stopped: {problem})"
        self.shortfall = line
        self._shortfall_report = {
            "declared_samples": declared, "read_samples": got,
            "missing_samples": declared - got if short else None,
            "missing_s": round((declared - got) / rate, 6) if short else None,
            "error": problem}

    def extend_report(self, report: dict) -> None:
        """An `input` section when the input ended short of its header or with a decoder
        error: declared_samples, read_samples, missing_samples, missing_s, error."""
        if self._shortfall_report is not None:
            report["input"] = dict(self._shortfall_report)

    def close(self) -> None:
        """Close the file. Safe twice."""
        f, self._file = self._file, None
        if f is not None:
            f.close()


# Subtypes libsndfile cannot put in RF64: compressed ones, which reach 4 GiB only after days.
_NO_RF64 = frozenset({"IMA_ADPCM", "MS_ADPCM", "GSM610", "G721_32", "NMS_ADPCM_16",
                      "NMS_ADPCM_24", "NMS_ADPCM_32", "MPEG_LAYER_III"})
_SFC_RF64_AUTO_DOWNGRADE = 0x1210   # sndfile.h: write RF64, downgrade to WAV if under 4 GiB
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
_FLOAT_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64)})


#: output extension -> (libsndfile's major format, the subtype written unless one is named or
#: kept from the input): float where the format holds it (a float round trip is exact),
#: FLAC's widest PCM, and the one codec of each lossy format
CONTAINERS = {
    ".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24"), ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".aiff": ("AIFF", "FLOAT"), ".aif": ("AIFF", "FLOAT"), ".aifc": ("AIFF", "FLOAT"),
    ".caf": ("CAF", "FLOAT"), ".w64": ("W64", "FLOAT"), ".rf64": ("RF64", "FLOAT"),
    ".au": ("AU", "FLOAT"),
}
_LOSSLESS_FAMILIES = ("PCM_", "FLOAT", "DOUBLE", "ALAC_")


@functools.cache
def writable_subtypes(container: str = "WAV", extension: str | None = None) -> tuple[str, ...]:
    """The subtypes this libsndfile can write in `container` (a major format: "WAV", "FLAC",
    "OGG", ...). It lists some it only reads (MPEG layer III in some builds), so each is
    tried once, in memory. `.opus` files hold only OPUS (an .ogg any Ogg codec)."""
    if extension == ".opus":
        return ("OPUS",) if "OPUS" in writable_subtypes("OGG") else ()
    ok = []
    block = np.zeros(DEFAULT_BLOCK_SIZE, np.float32)
    for subtype in sorted(sf.available_subtypes(container)):
        try:
            # a block written too: some open and then refuse every write (DWVW_12 in AIFF)
            with sf.SoundFile(io.BytesIO(), "w", samplerate=DEFAULT_SAMPLE_RATE, channels=1,
                              subtype=subtype, format=container) as f:
                f.write(block)
        except (sf.SoundFileError, RuntimeError, OSError):
            continue
        ok.append(subtype)
    return tuple(ok)


@functools.cache
def _round_trips(container: str, subtype: str, channels: int) -> bool:
    # libsndfile 1.2.2's ALAC encoder garbles stereo blocks it cannot compress (loud noise) at
    # 20, 24 and 32 bits (measured): an ALAC subtype must give back loud noise within 1 LSB
    bits = int(subtype.rpartition("_")[2])
    x = np.random.default_rng(0).uniform(-0.9, 0.9, (4096, channels))
    mem = io.BytesIO()
    try:
        with sf.SoundFile(mem, "w", samplerate=DEFAULT_SAMPLE_RATE, channels=channels,
                          subtype=subtype, format=container) as f:
            f.write(x)
        mem.seek(0)
        with sf.SoundFile(mem) as f:
            y = f.read(dtype="float64", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError):
        return False
    return y.shape == x.shape and float(np.max(np.abs(y - x))) <= 2.0 ** (1 - bits)


def lossless(subtype: str) -> bool:
    """Whether `subtype` keeps every sample it can represent (PCM, float, ALAC), as opposed to a
    lossy codec (Vorbis, Opus, MP3) or a companded or ADPCM one."""
    return subtype.startswith(_LOSSLESS_FAMILIES)


class WavSink(Sink):
    """Writes an audio file in the format its extension names (CONTAINERS: .wav, .flac, .ogg
    (Vorbis), .opus, .mp3, .aiff, .caf, .w64, .rf64, .au), in `subtype` (None: the format's
    default there, 32-bit float for WAV). `subtype_named` says the user named it (carry_input_
    facts() then leaves it alone). UsageError (exit 2) for an extension no format has, a
    subtype the format cannot hold, or a rate or channel count it cannot hold in that subtype
    (libsndfile is asked, in memory: Opus takes 8, 12, 16, 24 or 48 kHz, FLAC at most 8
    channels, ...).

    A WAV is RF64 that libsndfile downgrades to a plain WAV at close when it stayed under
    4 GiB (EBU Tech 3306), so a recording of any length reads back whole; its fmt chunk is
    then put in the form sox and ffmpeg read without a warning (io/wavheader.py). Samples are
    repaired at this boundary (io/base.py): NaN as 0, and for integer and companded subtypes
    clipped to full scale (libsndfile's u-law and A-law encoders index tables out of bounds
    beyond it).
    A write that fails (ENOSPC, EFBIG) raises RemoteMediaError naming the OS error; the file is
    truncated to the last whole block and finalized, and stays valid."""

    def __init__(self, path: str | os.PathLike, fmt: AudioFormat,
                 subtype: str | None = None):
        super().__init__(fmt)
        self.path = Path(path)
        extension = self.path.suffix.lower()
        if extension not in CONTAINERS:
            others = ", ".join(f"*{e}" for e in CONTAINERS if e != ".wav")
            raise UsageError(f"output file must be named *.wav (or {others}: the formats it "
                             f"writes): {self.path}")
        self.container, default = CONTAINERS[extension]
        self._extension = extension
        self.subtype_named = subtype is not None
        allowed = writable_subtypes(self.container, extension)
        subtype = default if subtype is None else subtype
        name = "Opus" if extension == ".opus" else self.container
        if subtype not in allowed:
            raise UsageError(f"{name} cannot hold subtype '{subtype}' here (try one of: "
                             f"{', '.join(allowed)})")
        self.channels = fmt.channels or 1
        self._set_subtype(subtype)
        parent = self.path.parent
        if not parent.is_dir():
            raise UsageError(f"output directory does not exist: {parent}")
        if self.path.is_dir():
            raise UsageError(f"output is a directory: {self.path}")
        if not os.access(parent, os.W_OK) or (self.path.exists()
                                              and not os.access(self.path, os.W_OK)):
            raise UsageError(f"output file is not writable: {self.path}")
        from .safefile import check_output
        check_output(self.path, "--output")   # a planted link or someone else's file: refused
        self.samples_written = 0
        self._dup: int | None = None   # our own descriptor, to tidy a WAV header after close
        self._file: sf.SoundFile | None = None
        #: SF_CHANNEL_MAP_* per channel to write (a WAV channel mask), None for libsndfile's
        #: default; and text tags (title, artist, ...): set by carry_input_facts()
        self.channel_map: tuple[int, ...] | None = None
        self.tags: dict[str, str] = {}

    def _set_subtype(self, subtype: str) -> None:
        # libsndfile says, in memory, whether this format holds the rate and channels so
        name = "Opus" if self._extension == ".opus" else self.container
        try:
            rate = self.format.sample_rate or DEFAULT_SAMPLE_RATE
            with sf.SoundFile(io.BytesIO(), "w", samplerate=rate, channels=self.channels,
                              subtype=subtype, format=self.container):
                pass
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise UsageError(f"{name} cannot hold {self.channels} channel(s) at "
                             f"{self.format.sample_rate} Hz in {subtype} ({sf_problem(exc)}): "
                             f"{self.path}") from None
        if subtype.startswith("ALAC_") and not _round_trips(self.container, subtype,
                                                             self.channels):
            raise UsageError(f"{name} cannot hold {self.channels} channel(s) in {subtype} here "
                             f"(libsndfile's ALAC encoder garbles loud audio so; use ALAC_16 "
                             f"or PCM_24): {self.path}")
        self.subtype = subtype
        self.description = f"file {self.path} ({subtype})"
        self.clips_to_full_scale = subtype not in _FLOAT_SUBTYPES

    def keep_subtype(self, subtype: str | None) -> bool:
        """Write `subtype` (an input's own, say) instead of the default, when none was named,
        it is lossless and this format writes it; True if it now will. Before open()."""
        if (self.subtype_named or subtype is None or not lossless(subtype)
                or subtype not in writable_subtypes(self.container, self._extension)):
            return False
        try:
            self._set_subtype(subtype)
        except UsageError:
            return False
        return True

    def writes(self):
        """The output file, for the path check."""
        return [("--output", self.path)]

    def open(self) -> None:
        """Create the file (RF64 that becomes plain WAV under 4 GiB) by io/safefile.py's rules
        (an existing file of this user's is replaced; a link planted by someone else is
        refused); UsageError (exit 2) if it cannot be created."""
        from .safefile import open_output_fd
        wav = self.container == "WAV"
        rf64 = wav and self.subtype not in _NO_RF64
        # never through a planted link; readable: libsndfile reads back what some encoders
        # wrote (DWVW in AIFF fails with EBADF on a write-only descriptor), and so do we, to
        # tidy a WAV's header after it
        fd = open_output_fd(self.path, "--output", readable=True)
        try:
            self._dup = os.dup(fd) if rf64 else None
            self._file = sf.SoundFile(fd, "w", samplerate=self.format.sample_rate,
                                      channels=self.channels, subtype=self.subtype,
                                      format="RF64" if rf64 else self.container, closefd=True)
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            os.close(fd)
            self._close_dup()
            raise UsageError(f"cannot create {self.path}: {sf_problem(exc)}") from exc
        if rf64:
            sf._snd.sf_command(self._file._file, _SFC_RF64_AUTO_DOWNGRADE, sf._ffi.NULL,
                               sf._snd.SF_TRUE)
        self._write_facts()

    def _write_facts(self) -> None:
        # What the input declared about itself (carry_input_facts), before the first sample.
        if self.channel_map is not None and len(self.channel_map) == self.channels:
            layout = sf._ffi.new("int[]", list(self.channel_map))
            sf._snd.sf_command(self._file._file, _SFC_SET_CHANNEL_MAP_INFO, layout,
                               sf._ffi.sizeof(layout))
        for name, text in self.tags.items():
            try:
                setattr(self._file, name, text)
            except (sf.SoundFileError, RuntimeError):
                pass    # a tag this format cannot hold

    def write(self, frame) -> None:
        """Repair (NaN as 0, clip for integer and companded subtypes; counted) and write one
        frame; on a failed write (ENOSPC, EFBIG) keep a valid file of whole blocks and raise
        RemoteMediaError naming the OS error; PipelineClosed after close(). Runner's
        thread."""
        array = self.checked_array(frame, self._file is None, str(self.path))
        if array.dtype not in _FLOAT_DTYPES:
            # Integer PCM in units of full scale: libsndfile writes int16 into a FLOAT file
            # unscaled (16384.0), and takes only four dtypes at all.
            array = to_unit_float(array)
            self.count_io_copy()
        array = self.repair(array)
        if not array.flags.c_contiguous:
            self.count_io_copy()  # soundfile makes it contiguous: one copy at the boundary
        try:
            self._file.write(array)
        except (sf.SoundFileError, RuntimeError, OSError, AssertionError) as exc:
            self._fail(exc)
        self.samples_written += array.shape[0]

    def _fail(self, exc: BaseException):
        # cffi keeps the errno of libsndfile's failed write(2); libsndfile only says
        # "System error." Cut the partial block off so the header describes whole blocks.
        code = sf._ffi.errno
        reason = f"{os.strerror(code)} ({errno.errorcode.get(code, code)})" if code \
            else sf_problem(exc)
        kept = self.samples_written
        f, self._file = self._file, None
        try:
            f.truncate(kept)
            f.close()
            self._tidy()
        except (sf.SoundFileError, RuntimeError, OSError):
            pass  # the OS refuses even that: the header stays as libsndfile last wrote it
        finally:
            self._close_dup()
        seconds = kept / (self.format.sample_rate or 1)
        raise RemoteMediaError(f"writing {self.path} failed: {reason}; kept the {kept} "
                               f"samples ({seconds:.2f} s) written before, as a valid file") \
            from exc

    def close(self) -> None:
        """Finalize the header with every sample written. Safe twice."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.close()  # rewrites the header with the final length
            self._tidy()
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise RemoteMediaError(f"finalizing {self.path} failed: {sf_problem(exc)}") from exc
        finally:
            self._close_dup()

    def _tidy(self) -> None:
        # the fmt chunk as sox and ffmpeg read it silently, through the descriptor we created
        # the file with (never the path again)
        if self._dup is not None and stat.S_ISREG(os.fstat(self._dup).st_mode):
            from .wavheader import tidy_wav_header
            tidy_wav_header(self._dup, keep_mask=self.channel_map is not None)

    def _close_dup(self) -> None:
        fd, self._dup = self._dup, None
        if fd is not None:
            os.close(fd)
