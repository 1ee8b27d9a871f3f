"""remotemedia's own source and sink kinds, registered the way a plugin's are.

pyproject.toml declares `builtins = remotemedia.io.builtins:register_sources` in the entry point
group `remotemedia.sources` and `register_sinks` in `remotemedia.sinks`; io/registry.py calls
them. Each factory takes a EndRequest (io/registry.py) and checks its SPEC before anything is
opened (UsageError, exit 2, one line).

    input                                   output
    default                                 default
    virtual[:SIGNAL]  (SIGNAL a generator)  virtual
    file:PATH         (any rate/subtype     file:PATH.EXT[:SUBTYPE]  (EXT: wav flac ogg opus mp3
                       libsndfile reads)                     aiff caf w64 rf64 au; io/files.py)
    raw:- | raw:PATH  (f32 LE interleaved)  raw:- | raw:PATH
    sine[:FREQ[:AMPLITUDE]]                 null
    chirp[:F0[:F1[:SECONDS]]]
    noise[:AMPLITUDE]
    silence
    device:NAME_OR_INDEX                    device:NAME_OR_INDEX   (see io/devices.py)
    text:STRING | text:@FILE  (io/text.py)
"""

from __future__ import annotations

from pathlib import Path

from .registry import ANY_EXTENSION, EndRegistry, EndRequest


# -- sources --------------------------------------------------------------------------------------

def register_sources(registry: EndRegistry) -> None:
    """Entry point (group `remotemedia.sources`, name `builtins`): the built-in input kinds,
    in the order users see them listed."""
    registry.add_scheme("default", _default_source)
    registry.add_scheme("virtual", _virtual_source)
    registry.add_scheme("file", _file_source, usage="file:PATH")
    registry.add_scheme("raw", _raw_source, usage="raw:-")
    registry.add_scheme("sine", _sine, usage="sine:FREQ", generator=True)
    registry.add_scheme("chirp", _chirp, generator=True)
    registry.add_scheme("noise", _noise, generator=True)
    registry.add_scheme("silence", _silence, generator=True)
    registry.add_scheme("device", _device_source, usage="device:NAME_OR_INDEX", listed=False)
    registry.add_scheme("text", _text_source, usage="text:STRING")
    # any extension: libsndfile reads WAV, FLAC, Ogg, AIFF, ... by their headers
    registry.add_extension(ANY_EXTENSION, _sndfile_source, usage="file:PATH")


def _default_source(req: EndRequest):
    from .spec import make_source, resolve_default
    return make_source(resolve_default("input"), req.fmt, req.mode)


def _virtual_source(req: EndRequest):
    from .spec import make_source, split_spec
    from .virtual import VirtualSource
    if req.arg is None:
        return VirtualSource(req.fmt)
    inner, _ = split_spec(req.arg, "input")
    from .registry import sources
    generators = sources.generators()
    if inner not in generators:
        raise req.bad(f"the virtual device plays a generator ({', '.join(generators)}), "
                      f"not '{inner}'")
    return VirtualSource(req.fmt, make_source(req.arg, req.fmt))


def _file_source(req: EndRequest):
    from .registry import sources
    path = file_path(req)
    kind = sources.extension(path)
    if kind is None:
        raise req.bad(f"no input kind reads '{path.suffix or path.name}' files")
    return kind.factory(EndRequest(req.spec, req.kind, req.name, req.arg, req.fmt, req.mode,
                                path=path))


def _text_source(req: EndRequest):
    # text:STRING and text:@FILE (io/text.py): Text frames, one a sentence
    from .text import text_source
    return text_source(req.spec, req.arg, req.fmt)


def _sndfile_source(req: EndRequest):
    from .files import WavSource
    return WavSource(req.path, req.fmt)


def _raw_source(req: EndRequest):
    from .raw import RawSource
    return RawSource(raw_target(req), req.fmt)


def _sine(req: EndRequest):
    from .synth import SineSource
    freq, amp = req.numbers(("frequency", "amplitude"), (440.0, 0.5))
    nyquist = req.fmt.sample_rate / 2
    if not 0 < freq < nyquist:
        raise req.bad(f"frequency must be above 0 and below {nyquist:g} Hz (half the sample "
                      f"rate)")
    return SineSource(req.fmt, freq, _amplitude(req, amp))


def _chirp(req: EndRequest):
    from .synth import ChirpSource
    nyquist = req.fmt.sample_rate / 2
    f0, f1, seconds = req.numbers(("start frequency", "end frequency", "seconds"),
                                  (20.0, min(20000.0, 0.45 * req.fmt.sample_rate), 5.0))
    if not (0 < f0 < nyquist and 0 < f1 < nyquist):
        raise req.bad(f"frequencies must be above 0 and below {nyquist:g} Hz")
    if seconds <= 0:
        raise req.bad("the sweep needs a positive number of seconds")
    return ChirpSource(req.fmt, f0, f1, seconds)


def _noise(req: EndRequest):
    from .synth import NoiseSource
    (amp,) = req.numbers(("amplitude",), (0.25,))
    return NoiseSource(req.fmt, _amplitude(req, amp))


def _silence(req: EndRequest):
    from .synth import SilenceSource
    req.no_arg("silence")
    return SilenceSource(req.fmt)


def _device_source(req: EndRequest):
    from .devices import DeviceSource
    return DeviceSource(req.fmt, device_arg(req), mode=req.mode)


# -- sinks ----------------------------------------------------------------------------------------

def register_sinks(registry: EndRegistry) -> None:
    """Entry point (group `remotemedia.sinks`, name `builtins`): the built-in output kinds, in
    the order users see them listed."""
    registry.add_scheme("default", _default_sink)
    registry.add_scheme("virtual", _virtual_sink)
    registry.add_scheme("file", _file_sink, usage="file:PATH.wav")
    registry.add_scheme("raw", _raw_sink, usage="raw:-")
    registry.add_scheme("null", _null_sink)
    registry.add_scheme("device", _device_sink, usage="device:NAME_OR_INDEX", listed=False)
    registry.add_extension(".wav", _wav_sink, usage="file:PATH.wav[:SUBTYPE]")
    # the other formats libsndfile writes, by extension, each with the subtypes it allows
    # (io/files.py CONTAINERS; FLAC: PCM_16/24, Ogg: VORBIS or OPUS, .opus: OPUS, ...)
    from .files import CONTAINERS
    for ext in CONTAINERS:
        if ext != ".wav":
            registry.add_extension(ext, _wav_sink, usage=f"file:PATH{ext}[:SUBTYPE]")
    # transcripts of a graph that emits text (io/transcripts.py)
    for ext in (".srt", ".vtt", ".txt", ".jsonl"):
        registry.add_extension(ext, _transcript_sink, usage=f"file:PATH{ext}")
    # any other extension: the file writer, which refuses it by name ("must be named *.wav
    # (or *.flac, ...)")
    registry.add_extension(ANY_EXTENSION, _wav_sink)


def register(registry: EndRegistry) -> None:
    """The built-in kinds of `registry`'s direction (for a registry loaded without them)."""
    (register_sources if registry.kind == "input" else register_sinks)(registry)


def _default_sink(req: EndRequest):
    from .spec import make_sink, resolve_default
    return make_sink(resolve_default("output"), req.fmt)


def _virtual_sink(req: EndRequest):
    from .virtual import VirtualSink
    req.no_arg("the virtual output")
    return VirtualSink(req.fmt)


def _file_sink(req: EndRequest):
    from .registry import sinks
    arg = req.arg
    path, option = file_path(req), None
    head, sep, tail = (arg or "").rpartition(":")
    if sep and sinks.names_extension(head):   # file:out.wav:PCM_16
        path, option = file_path(req, head), tail
    kind = sinks.extension(path)
    if kind is None:
        raise req.bad(f"no output kind writes '{path.suffix or path.name}' files")
    return kind.factory(EndRequest(req.spec, req.kind, req.name, arg, req.fmt, req.mode,
                                path=path, option=option))


def _wav_sink(req: EndRequest):
    from .files import WavSink
    # no subtype named: the format's default (WAV: FLOAT), or the input's own when the graph
    # leaves the samples as they were (carry_input_facts)
    return WavSink(req.path, req.fmt, None if req.option is None else req.option.upper())


def _transcript_sink(req: EndRequest):
    from .transcripts import transcript_sink
    return transcript_sink(req.path, req.fmt)


def _raw_sink(req: EndRequest):
    from .raw import RawSink
    return RawSink(raw_target(req), req.fmt)


def _null_sink(req: EndRequest):
    from .virtual import NullSink
    req.no_arg("null")
    return NullSink(req.fmt)


def _device_sink(req: EndRequest):
    from .devices import DeviceSink
    return DeviceSink(req.fmt, device_arg(req))


# -- shared checks --------------------------------------------------------------------------------

def file_path(req: EndRequest, text: str | None = None) -> Path:
    """The path of a `file:` SPEC (`text`, default the whole argument), `~` expanded.
    UsageError when it is empty."""
    text = req.arg if text is None else text
    if not text:
        raise req.bad("file: needs a path, as in file:audio.wav")
    return Path(text).expanduser()


def raw_target(req: EndRequest) -> str:
    """'-' (stdin or stdout) or the path of a `raw:` SPEC. UsageError when it is empty."""
    if not req.arg:
        where = "stdin" if req.kind == "input" else "stdout"
        raise req.bad(f"raw: needs '-' ({where}) or a path, as in raw:-")
    return req.arg if req.arg == "-" else str(Path(req.arg).expanduser())


def device_arg(req: EndRequest) -> str:
    """The name or index of a `device:` SPEC, stripped. UsageError when it is empty."""
    if not req.arg or not req.arg.strip():
        raise req.bad("device: needs a name or an index, as in device:0 (see "
                      "`remotemedia devices`)")
    return req.arg.strip()


def _amplitude(req: EndRequest, amp: float) -> float:
    if not 0 <= amp <= 1:
        raise req.bad(f"amplitude must be between 0 and 1 (full scale), got {amp:g}")
    return amp
