"""SPEC strings -> sources and sinks. The one place that knows the SPEC grammar.

    input                                   output
    default                                 default
    device:NAME_OR_INDEX                    device:NAME_OR_INDEX   (see io/devices.py)
    virtual[:SIGNAL]  (SIGNAL a generator)  virtual
    file:PATH         (any rate/subtype     file:PATH.wav[:SUBTYPE]  (FLOAT unless named)
                       libsndfile reads)
    raw:- | raw:PATH  (f32 LE interleaved)  raw:- | raw:PATH
    text:STRING | text:@FILE (io/text.py)
    sine[:FREQ[:AMPLITUDE]]                 null
    chirp[:F0[:F1[:SECONDS]]]
    noise[:AMPLITUDE]
    silence
    PATH              a bare path with a '/' or a '.' (or an existing file) is `file:PATH`

`default` goes through `resolve_default()`: the system's default sound device when PortAudio
has one, else the clocked virtual device, announced once per process on stderr.
REMOTEMEDIA_DEFAULT_DEVICE=virtual makes it the virtual device even when there is a device. Every bad SPEC is a UsageError with a one-line message.
"""

from __future__ import annotations

import difflib
import math
import sys
from pathlib import Path

from ..engine.errors import UsageError
from ..engine.node import AudioFormat
from .base import Sink, Source
from .files import DEFAULT_SUBTYPE, WavSink, WavSource
from .raw import RawSink, RawSource
from .synth import ChirpSource, NoiseSource, SilenceSource, SineSource
from .virtual import NullSink, VirtualSink, VirtualSource

SOURCE_SPECS = ("default", "virtual", "file:PATH", "PATH", "raw:-", "sine:FREQ", "chirp", "noise",
                "silence", "text:STRING", "text:@FILE")
SINK_SPECS = ("default", "virtual", "file:PATH.wav", "PATH.wav", "raw:-", "null")
_GENERATORS = ("sine", "chirp", "noise", "silence")
#: the names a SPEC may start with; anything else that looks like a path is a file
SOURCE_NAMES = frozenset({"default", "virtual", "file", "raw", "device", "null", "text",
                          *_GENERATORS})
SINK_NAMES = SOURCE_NAMES


def bare_path(spec: str, names=SOURCE_NAMES) -> str:
    """A SPEC given as a bare path (`take.wav`, `./out.flac`, `/tmp/x.wav:PCM_16`) as the
    `file:` SPEC it means, as sox and ffmpeg take file names; anything else unchanged. A
    path is what does not start with a SPEC name and has a '/' or a '.' in it, or names a
    file that exists, so that a mistyped name (`sin`) still gets "did you mean"."""
    text = spec.strip()
    head = text.split(":", 1)[0]
    if not text or head in names or text == "-":
        return spec
    if "/" in text or "." in head or Path(text).exists():
        return f"file:{text}"
    return spec

_announced = False


def resolve_default(kind: str) -> str:
    """The SPEC that `default` stands for at `kind` ('input' or 'output').

    The system's default sound device (`device:INDEX`) when PortAudio has one; otherwise the
    clocked virtual device, and the first such call in a process says so, and why, on stderr."""
    global _announced
    import os
    if os.environ.get("REMOTEMEDIA_DEFAULT_DEVICE", "").lower() == "virtual":
        why = "REMOTEMEDIA_DEFAULT_DEVICE=virtual"
    else:
        from .devices import default_device
        index, why = default_device(kind)
        if index is not None:
            return f"device:{index}"
    if not _announced:
        _announced = True
        print(f"remotemedia: {why}; 'default' is the clocked virtual device (input: silence, "
              f"output: discarded, paced in real time)", file=sys.stderr)
    return "virtual"


def make_source(spec: str, fmt: AudioFormat, mode: str | None = None) -> Source:
    """A Source for an input SPEC, producing blocks in `fmt` (the manifest's audio format).
    `mode` ('queued' or 'callback') applies to a sound device input."""
    fmt = _complete(fmt)
    spec = bare_path(spec, SOURCE_NAMES)
    name, arg = _split(spec, "input")
    if name == "default":
        return make_source(resolve_default("input"), fmt, mode)
    if name == "virtual":
        if arg is None:
            return VirtualSource(fmt)
        inner, _ = _split(arg, "input")
        if inner not in _GENERATORS:
            raise _bad(spec, "input", f"the virtual device plays a generator "
                                      f"({', '.join(_GENERATORS)}), not '{inner}'")
        return VirtualSource(fmt, make_source(arg, fmt))
    if name == "file":
        return WavSource(_path(spec, arg, "input"), fmt)
    if name == "raw":
        return RawSource(_raw_target(spec, arg, "input"), fmt)
    if name == "sine":
        freq, amp = _numbers(spec, arg, "input", ("frequency", "amplitude"), (440.0, 0.5))
        nyquist = fmt.sample_rate / 2
        if not 0 < freq < nyquist:
            raise _bad(spec, "input", f"frequency must be above 0 and below {nyquist:g} Hz "
                                      f"(half the sample rate)")
        return SineSource(fmt, freq, _amplitude(spec, amp))
    if name == "chirp":
        nyquist = fmt.sample_rate / 2
        f0, f1, seconds = _numbers(spec, arg, "input", ("start frequency", "end frequency",
                                                        "seconds"),
                                   (20.0, min(20000.0, 0.45 * fmt.sample_rate), 5.0))
        if not (0 < f0 < nyquist and 0 < f1 < nyquist):
            raise _bad(spec, "input", f"frequencies must be above 0 and below {nyquist:g} Hz")
        if seconds <= 0:
            raise _bad(spec, "input", "the sweep needs a positive number of seconds")
        return ChirpSource(fmt, f0, f1, seconds)
    if name == "noise":
        (amp,) = _numbers(spec, arg, "input", ("amplitude",), (0.25,))
        return NoiseSource(fmt, _amplitude(spec, amp))
    if name == "silence":
        if arg is not None:
            raise _bad(spec, "input", "silence takes no arguments")
        return SilenceSource(fmt)
    if name == "text":
        from .text import text_source
        return text_source(spec, arg, fmt)
    if name == "null":
        raise _bad(spec, "input", "null is an output; for an input of zeros use 'silence'")
    if name == "device":
        from .devices import DeviceSource
        return DeviceSource(fmt, _device_arg(spec, arg, "input"), mode=mode)
    raise _unknown(spec, name, "input", SOURCE_SPECS)


def make_sink(spec: str, fmt: AudioFormat) -> Sink:
    """A Sink for an output SPEC, taking frames in `fmt` (the manifest's output format)."""
    fmt = _complete(fmt)
    spec = bare_path(spec, SINK_NAMES)
    name, arg = _split(spec, "output")
    if name == "default":
        return make_sink(resolve_default("output"), fmt)
    if name == "virtual":
        if arg is not None:
            raise _bad(spec, "output", "the virtual output takes no arguments")
        return VirtualSink(fmt)
    if name == "file":
        path, subtype = _path(spec, arg, "output"), DEFAULT_SUBTYPE
        head, sep, tail = arg.rpartition(":")
        if sep and head.lower().endswith(".wav"):
            path, subtype = _path(spec, head, "output"), tail.upper()
        return WavSink(path, fmt, subtype)
    if name == "raw":
        return RawSink(_raw_target(spec, arg, "output"), fmt)
    if name == "null":
        if arg is not None:
            raise _bad(spec, "output", "null takes no arguments")
        return NullSink(fmt)
    if name in _GENERATORS:
        raise _bad(spec, "output", f"{name} is an input; to discard the output use 'null'")
    if name == "device":
        from .devices import DeviceSink
        return DeviceSink(fmt, _device_arg(spec, arg, "output"))
    raise _unknown(spec, name, "output", SINK_SPECS)


# -- helpers ---------------------------------------------------------------------------------------

def _complete(fmt: AudioFormat) -> AudioFormat:
    # A format with unknowns (a node that declares none) falls back to the engine defaults.
    return AudioFormat(fmt.sample_rate or 48000, fmt.channels or 1, fmt.block_size or 960)


def _split(spec, kind: str) -> tuple[str, str | None]:
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"empty {kind} SPEC (expected one of: "
                         f"{', '.join(SOURCE_SPECS if kind == 'input' else SINK_SPECS)})")
    name, sep, arg = spec.partition(":")
    return name.strip().lower(), (arg if sep else None)


def _bad(spec: str, kind: str, problem: str) -> UsageError:
    return UsageError(f"bad {kind} SPEC '{spec}': {problem}")


def _unknown(spec: str, name: str, kind: str, known: tuple[str, ...]) -> UsageError:
    names = [k.split(":")[0] for k in known]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return UsageError(f"unknown {kind} SPEC '{spec}'{hint}; expected one of: "
                      f"{', '.join(known)}")


def _device_arg(spec: str, arg: str | None, kind: str) -> str:
    if not arg or not arg.strip():
        raise _bad(spec, kind, "device: needs a name or an index, as in device:0 (see "
                               "`remotemedia devices`)")
    return arg.strip()


def _path(spec: str, arg: str | None, kind: str) -> Path:
    if not arg:
        raise _bad(spec, kind, "file: needs a path, as in file:audio.wav")
    return Path(arg).expanduser()


def _raw_target(spec: str, arg: str | None, kind: str) -> str:
    if not arg:
        where = "stdin" if kind == "input" else "stdout"
        raise _bad(spec, kind, f"raw: needs '-' ({where}) or a path, as in raw:-")
    return arg if arg == "-" else str(Path(arg).expanduser())


def _numbers(spec: str, arg: str | None, kind: str, names: tuple[str, ...],
             defaults: tuple[float, ...]) -> tuple[float, ...]:
    parts = [] if arg is None or arg == "" else arg.split(":")
    if len(parts) > len(names):
        raise _bad(spec, kind, f"too many fields (at most: {', '.join(names)})")
    values = list(defaults)
    for i, text in enumerate(parts):
        try:
            value = float(text)
        except ValueError:
            raise _bad(spec, kind, f"{names[i]} must be a number, got '{text}'") from None
        if not math.isfinite(value):
            raise _bad(spec, kind, f"{names[i]} must be finite, got '{text}'")
        values[i] = value
    return tuple(values)


def _amplitude(spec: str, amp: float) -> float:
    if not 0 <= amp <= 1:
        raise _bad(spec, "input", f"amplitude must be between 0 and 1 (full scale), got {amp:g}")
    return amp
