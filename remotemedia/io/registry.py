"""Source and sink kinds: the registries an input or output SPEC is looked up in.

A SPEC names its kind by scheme, the part before the first ':' (`sine:440`, `device:0`,
`null`), and a `file:PATH` SPEC names it again by the file's extension (`file:take.wav`), so a
reader or writer for another format is one more registration, not an edit of the SPEC parser:

    from remotemedia.io.registry import sources, sinks

    def register(registry):                    # entry point group remotemedia.sources
        registry.add_scheme("tone", make_tone, usage="tone:FREQ")

    def make_tone(request):                    # request: a EndRequest (below)
        (freq,) = request.numbers(("frequency",), (440.0,))
        return ToneSource(request.fmt, freq)

Two registries, `sources` (inputs, entry point group `remotemedia.sources`) and `sinks`
(outputs, group `remotemedia.sinks`). Each entry point names a function `register(registry)`
that adds one or more kinds, the way `remotemedia.nodes` entry points may; remotemedia's own
ends come in the same way (`builtins = remotemedia.io.builtins:register_sources` in
pyproject.toml). Entry points load on the first lookup, once per process; a kind's factory
imports what it needs when it is called (the device factories import PortAudio only then).

A factory takes a `EndRequest` and returns a Source or a Sink; it raises UsageError (exit 2, one
line, `request.bad(problem)` makes one) for a SPEC it cannot take, before opening anything.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

from ..engine.errors import UsageError
from ..engine.node import AudioFormat
from ..engine.plugins import EntryPoints

SOURCES_GROUP = "remotemedia.sources"
SINKS_GROUP = "remotemedia.sinks"
#: the extension key of the file kind used for any extension no kind names
ANY_EXTENSION = "*"
_BUILTINS = "remotemedia.io.builtins:"


@dataclass(frozen=True)
class EndRequest:
    """What a factory is asked to build, with the parsing helpers every kind shares.

    - `spec`: the SPEC as the user gave it (for messages); `kind`: 'input' or 'output'
    - `name`: the scheme, lower-cased ('file' for an extension kind); `arg`: the text after
      the first ':' (None when there is no ':', '' when it is empty)
    - `fmt`: the AudioFormat to produce or take, complete (rate in Hz, channels, block size
      in samples); `mode`: 'queued' or 'callback' for a device input, else None
    - extension kinds only: `path` (the file, `~` expanded) and `option` (the text after
      `PATH.EXT:`, as in `file:out.wav:PCM_16`; None when absent)"""

    spec: str
    kind: str
    name: str
    arg: str | None
    fmt: AudioFormat
    mode: str | None = None
    path: Path | None = None
    option: str | None = None

    def bad(self, problem: str) -> UsageError:
        """The UsageError for this SPEC: "bad input SPEC 'x': problem" (one line, exit 2)."""
        return UsageError(f"bad {self.kind} SPEC '{self.spec}': {problem}")

    def no_arg(self, what: str | None = None) -> None:
        """Refuse any argument: UsageError "`what` takes no arguments" (default: the name)."""
        if self.arg is not None:
            raise self.bad(f"{what or self.name} takes no arguments")

    def numbers(self, names: tuple[str, ...], defaults: tuple[float, ...]) -> tuple[float, ...]:
        """The ':'-separated numbers of `arg`, each finite, `defaults` where absent. UsageError
        for more fields than `names`, a field that is not a number, or one not finite."""
        arg = self.arg
        parts = [] if arg is None or arg == "" else arg.split(":")
        if len(parts) > len(names):
            raise self.bad(f"too many fields (at most: {', '.join(names)})")
        values = list(defaults)
        for i, text in enumerate(parts):
            try:
                value = float(text)
            except ValueError:
                raise self.bad(f"{names[i]} must be a number, got '{text}'") from None
            if not math.isfinite(value):
                raise self.bad(f"{names[i]} must be finite, got '{text}'")
            values[i] = value
        return tuple(values)


@dataclass(frozen=True)
class Kind:
    """One registered kind: `name` (a scheme, or an extension such as '.wav'), `factory`
    (EndRequest -> Source | Sink), `usage` (how lists of kinds show it, as `sine:FREQ`),
    `generator` (a source the virtual device can play: `virtual:sine:440`), and `listed`
    (shown in "expected one of" lists and the TUI's choices; `device:` is not: devices are
    listed by `remotemedia devices`)."""

    name: str
    factory: Callable[[EndRequest], object] = field(repr=False)
    usage: str
    generator: bool = False
    listed: bool = True


class EndRegistry:
    """Kinds of one direction ('input': sources, 'output': sinks), by scheme and by file
    extension, in registration order. Thread-safe; a later registration of a name replaces
    the earlier one (a plugin may override a built-in)."""

    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._schemes: dict[str, Kind] = {}
        self._extensions: dict[str, Kind] = {}
        self._lock = threading.RLock()
        self._plugins = EntryPoints(group, first=_BUILTINS)

    # -- registering ---------------------------------------------------------------------------
    def add_scheme(self, name: str, factory: Callable[[EndRequest], object], *,
                   usage: str | None = None, generator: bool = False,
                   listed: bool = True) -> Kind:
        """Register scheme `name` (letters, digits, '-', '_', '+', '.'; case-insensitive).
        `usage` defaults to `name`; `generator` and `listed` as in Kind. ValueError for a
        malformed name. Returns the Kind."""
        key = name.strip().lower()
        if not key or ":" in key or not all(c.isalnum() or c in "-_+." for c in key):
            raise ValueError(f"a {self.kind} scheme is letters, digits, '-', '_', '+' or '.', "
                             f"not {name!r}")
        entry = Kind(key, factory, usage or key, generator, listed)
        with self._lock:
            self._schemes.pop(key, None)      # re-registering moves it to the end
            self._schemes[key] = entry
        return entry

    def add_extension(self, extension: str, factory: Callable[[EndRequest], object], *,
                      usage: str | None = None) -> Kind:
        """Register the file kind for `extension` ('.wav'; case-insensitive), or ANY_EXTENSION
        ('*') for every extension no other kind names. ValueError for a malformed extension.
        Returns the Kind."""
        key = extension.strip().lower()
        if key != ANY_EXTENSION and (len(key) < 2 or not key.startswith(".")
                                     or any(c in key for c in "/:\\")):
            raise ValueError(f"a file extension starts with '.', as in '.wav', not "
                             f"{extension!r}")
        entry = Kind(key, factory, usage or f"file:PATH{'' if key == '*' else key}")
        with self._lock:
            self._extensions.pop(key, None)
            self._extensions[key] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget the scheme or extension `name` (an extension starts with '.', or is '*').
        KeyError when it is not registered."""
        key = name.strip().lower()
        with self._lock:
            table = self._extensions if key.startswith(".") or key == ANY_EXTENSION \
                else self._schemes
            del table[key]

    # -- looking up ----------------------------------------------------------------------------
    def scheme(self, name: str) -> Kind | None:
        """The kind of scheme `name` (case-insensitive), or None (entry points loaded first)."""
        self.load_entry_points()
        return self._schemes.get(name.strip().lower())

    def extension(self, path: str | Path) -> Kind | None:
        """The file kind for `path` by its extension (case-insensitive), else the ANY_EXTENSION
        kind, else None."""
        self.load_entry_points()
        suffix = Path(path).suffix.lower()
        return self._extensions.get(suffix) or self._extensions.get(ANY_EXTENSION)

    def names_extension(self, path: str) -> bool:
        """Whether `path` ends in an extension a kind names itself (not the '*' fallback)."""
        self.load_entry_points()
        suffix = Path(path).suffix.lower()
        return bool(suffix) and suffix in self._extensions

    def schemes(self) -> tuple[Kind, ...]:
        """Every scheme kind, in registration order (remotemedia's own first)."""
        self.load_entry_points()
        with self._lock:
            return tuple(self._schemes.values())

    def extensions(self) -> tuple[Kind, ...]:
        """Every extension kind, in registration order."""
        self.load_entry_points()
        with self._lock:
            return tuple(self._extensions.values())

    def usages(self) -> tuple[str, ...]:
        """How the listed schemes are shown to users, as in "expected one of: ..."."""
        return tuple(k.usage for k in self.schemes() if k.listed)

    def generators(self) -> tuple[str, ...]:
        """The schemes the virtual device can play (`virtual:NAME`)."""
        return tuple(k.name for k in self.schemes() if k.generator)

    # -- entry points --------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        """Call each `register(registry)` of this registry's entry point group, once per
        process, remotemedia's own first. RemoteMediaError (exit 1, one line naming the entry
        point) when one cannot be imported or fails."""
        self._plugins.load(self, self._builtins_if_undeclared)

    def _builtins_if_undeclared(self) -> None:
        # an install whose metadata predates these entry points (an editable install made
        # before they were declared) still gets the built-ins, and first
        if not any(ep.value.startswith(_BUILTINS) for ep in entry_points(group=self.group)):
            from . import builtins
            builtins.register(self)


#: input kinds (entry point group remotemedia.sources)
sources = EndRegistry("input", SOURCES_GROUP)
#: output kinds (entry point group remotemedia.sinks)
sinks = EndRegistry("output", SINKS_GROUP)
