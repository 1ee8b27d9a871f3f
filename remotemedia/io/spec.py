"""SPEC strings -> sources and sinks: a lookup in the kind registries (io/registry.py).

A SPEC is `SCHEME[:ARG]`; the scheme picks a kind in `registry.sources` (inputs) or
`registry.sinks` (outputs), and a `file:PATH` kind picks its reader or writer by the file's
extension. remotemedia's own kinds (io/builtins.py, which lists them) register there as a
plugin's do, through the entry point groups `remotemedia.sources` and `remotemedia.sinks`.
A bare path (`take.wav`, `./out.flac`, `/tmp/x.wav:PCM_16`) means `file:PATH` (bare_path()).

`default` goes through `resolve_default()`: the system's default sound device when PortAudio
has one, else the clocked virtual device, announced once per process on stderr.
REMOTEMEDIA_DEFAULT_DEVICE=virtual makes it the virtual device even when there is a device.
Every bad SPEC is a UsageError (exit 2) with a one-line message; an unknown scheme's names the
known ones, with a "did you mean" for a near miss.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from ..engine.errors import UsageError
from ..engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_CHANNELS, DEFAULT_SAMPLE_RATE, AudioFormat
from .base import Sink, Source
from .registry import EndRegistry, EndRequest, sinks, sources

_announced = False


def __getattr__(name: str):
    # SOURCE_SPECS / SINK_SPECS: what the registries list now (plugins included), as the
    # tuples this module has always exported (the TUI's choices read them); SOURCE_NAMES /
    # SINK_NAMES: every scheme, which a bare path must not start with
    if name in ("SOURCE_SPECS", "SINK_SPECS"):
        return usages(sources if name == "SOURCE_SPECS" else sinks)
    if name in ("SOURCE_NAMES", "SINK_NAMES"):
        registry = sources if name == "SOURCE_NAMES" else sinks
        return frozenset(k.name for k in (*registry.schemes(), *_other(registry).schemes()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def usages(registry: EndRegistry) -> tuple[str, ...]:
    """How users see the kinds of `registry`: each listed scheme's usage, the `file:` one
    followed by its bare form (`PATH`), as "expected one of" lists them."""
    out: list[str] = []
    for kind in registry.schemes():
        if kind.listed:
            out.append(kind.usage)
            if kind.name == "file":
                out.append(kind.usage.partition(":")[2])
    return tuple(out)


def bare_path(spec: str, names=None) -> str:
    """A SPEC given as a bare path (`take.wav`, `./out.flac`, `/tmp/x.wav:PCM_16`) as the
    `file:` SPEC it means, as sox and ffmpeg take file names; anything else unchanged. A
    path is what does not start with a scheme (`names`, default every scheme either registry
    knows) and has a '/' or a '.' in it, or names a file that exists, so that a mistyped name
    (`sin`) still gets "did you mean"."""
    if names is None:
        names = {k.name for k in (*sources.schemes(), *sinks.schemes())}
    text = spec.strip()
    head = text.split(":", 1)[0]
    if not text or head.lower() in names or text == "-":
        return spec
    if "/" in text or "." in head or Path(text).exists():
        return f"file:{text}"
    return spec


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
    """A Source for an input SPEC (or a bare path), producing blocks in `fmt` (the manifest's
    audio format; unknowns fall back to 48 kHz, 1 channel, 960 samples). `mode` ('queued' or
    'callback') applies to a sound device input. UsageError (exit 2) for a SPEC no kind
    takes."""
    return _make(sources, spec, _complete(fmt), mode)


def file_input(spec: str):
    """For an input SPEC `file:PATH` (or a bare path) that libsndfile reads, the file opened
    for its own format (samplerate, channels; a FIFO is opened here, once), to conform() to
    the run's format later; None for any other SPEC, and for an extension a plugin's reader
    names (its format is not libsndfile's to probe). UsageError if the file cannot be
    read."""
    name, arg = split_spec(bare_path(spec), "input")
    if name != "file" or not arg or sources.names_extension(arg):
        return None
    from .files import WavSource
    return WavSource(Path(arg).expanduser(), AudioFormat())


def make_sink(spec: str, fmt: AudioFormat) -> Sink:
    """A Sink for an output SPEC (or a bare path), taking frames in `fmt` (the manifest's
    output format; unknowns as in make_source). UsageError (exit 2) for a SPEC no kind
    takes."""
    return _make(sinks, spec, _complete(fmt), None)


def split_spec(spec, kind: str) -> tuple[str, str | None]:
    """(scheme lower-cased, argument or None) of a SPEC at `kind` ('input' or 'output').
    UsageError for an empty SPEC or one that is not a string."""
    if not isinstance(spec, str) or not spec.strip():
        known = usages(sources if kind == "input" else sinks)
        raise UsageError(f"empty {kind} SPEC (expected one of: {', '.join(known)})")
    name, sep, arg = spec.partition(":")
    return name.strip().lower(), (arg if sep else None)


# -- helpers ---------------------------------------------------------------------------------------

def _other(registry: EndRegistry) -> EndRegistry:
    return sinks if registry is sources else sources


def _make(registry: EndRegistry, spec, fmt: AudioFormat, mode):
    if isinstance(spec, str):
        spec = bare_path(spec)
    other = _other(registry)
    name, arg = split_spec(spec, registry.kind)
    kind = registry.scheme(name)
    if kind is None:
        raise _unknown(registry, other, spec, name)
    return kind.factory(EndRequest(spec, registry.kind, name, arg, fmt, mode))


def _complete(fmt: AudioFormat) -> AudioFormat:
    # A format with unknowns (a node that declares none) falls back to the engine defaults.
    return AudioFormat(fmt.sample_rate or DEFAULT_SAMPLE_RATE, fmt.channels or DEFAULT_CHANNELS,
                       fmt.block_size or DEFAULT_BLOCK_SIZE)


def _unknown(registry: EndRegistry, other: EndRegistry, spec: str, name: str) -> UsageError:
    kind = registry.kind
    if other.scheme(name) is not None:           # a name that only exists the other way round
        if kind == "input" and name == "null":
            problem = "null is an output; for an input of zeros use 'silence'"
        elif kind == "output" and name in other.generators():
            problem = f"{name} is an input; to discard the output use 'null'"
        else:
            problem = f"{name} is an {other.kind}, not an {kind}"
        return UsageError(f"bad {kind} SPEC '{spec}': {problem}")
    known = usages(registry)
    names = [k.split(":")[0] for k in known]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return UsageError(f"unknown {kind} SPEC '{spec}'{hint}; expected one of: "
                      f"{', '.join(known)}")
