"""Nodes: the base class, typed parameters, input requirements, and the registry.

A node declares what it is (`node_type`, `description`, `params`), what it takes (`inputs`: one
input, or many keyed by input name; `accepts`: the RuntimeData kinds it wants to see; `requires`:
a dtype or contiguity it needs, which the engine adapts once and counts as an `engine` copy), and
how it changes the audio format (`output_format`, used to validate a manifest before it runs).

Data a node does not accept flows past it to its consumers untouched, so events (Json, Control)
travel down the graph to `output` without every node having to forward them.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

import numpy as np

from .data import NumpyData, RuntimeData
from .errors import UnknownNodeType  # noqa: F401 (re-exported: its historic home)
from .numbers import as_float, shown
from .errors import one_line
from .levels import from_unit_float, to_unit_float

REQUIRED = object()

_TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool", list: "list", dict: "dict"}


@dataclass(frozen=True)
class Param:
    """A typed node parameter, checked when the manifest loads.

    `type` is int, float, str, bool, list or dict; `default` is REQUIRED when the manifest must
    give it; `min`/`max` bound numbers (inclusive) in the param's own unit, which its name or
    `doc` states (`_hz`, `_ms`, `_dbfs` for absolute levels, `_db` for relative gains).
    `aliases` are deprecated names still accepted: the manifest loader renames them and adds
    a warning naming the new one (`Node.rename_aliases`)."""

    name: str
    type: type
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    #: why the range is what it is, said in the error (e.g. "a 16-bit signal's dynamic range")
    range_reason: str = ""
    #: old names of this param, accepted with a deprecation warning naming `name`
    aliases: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """True if the manifest must give this param (it has no default)."""
        return self.default is REQUIRED

    @property
    def type_name(self) -> str:
        """The declared type as the manifest's user spells it ("int", "float", ...)."""
        return _TYPE_NAMES.get(self.type, getattr(self.type, "__name__", str(self.type)))

    def check(self, value: Any) -> Any:
        """Return the value in its declared type, or raise ValueError saying what is wrong."""
        if value is None and self.default is None:
            return None
        t = self.type
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            if as_float(value) is None:      # beyond a float: OverflowError before
                raise ValueError(f"param '{self.name}' must be a finite number, "
                                 f"got {shown(value)}")
            value = float(value)
        elif t is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if t in (int, float) and isinstance(value, bool) or not isinstance(value, t):
            raise ValueError(f"param '{self.name}' must be {self.type_name}, "
                             f"got {type(value).__name__} {value!r}")
        if t is float and not math.isfinite(value):
            # `.nan` or `.inf` in YAML: no gain, threshold or duration means that.
            raise ValueError(f"param '{self.name}' must be a finite number, got {shown(value)}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"param '{self.name}' must be one of "
                             f"{', '.join(map(repr, self.choices))}, got {shown(value)}")
        if self.min is not None and value < self.min:
            raise ValueError(f"param '{self.name}' must be >= {self.min:g}{self._why()}, "
                             f"got {shown(value)}")
        if self.max is not None and value > self.max:
            raise ValueError(f"param '{self.name}' must be <= {self.max:g}{self._why()}, "
                             f"got {shown(value)}")
        return value

    def _why(self) -> str:
        return f" ({self.range_reason})" if self.range_reason else ""

    def describe(self) -> dict:
        """A JSON-ready dict of the param (name, type, default, required, doc, and choices,
        min, max, aliases where set), as `remotemedia nodes` lists it."""
        out = {"name": self.name, "type": self.type_name,
               "default": None if self.required else self.default,
               "required": self.required, "doc": self.doc}
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out


@dataclass(frozen=True)
class InputRequirement:
    """What a node needs of its input arrays. A frame that does not meet it is converted once,
    before the node, and counted as one `engine` copy."""

    dtype: str | None = None          # a dtype name, or "floating" for any float dtype
    c_contiguous: bool = False

    def satisfied_by(self, array: np.ndarray) -> bool:
        """True if `array` already meets the requirement (dtype and, if asked, C order): no copy
        needed."""
        if self.c_contiguous and not array.flags.c_contiguous:
            return False
        if self.dtype == "floating":
            return array.dtype.kind == "f"
        if self.dtype is not None:
            return array.dtype == np.dtype(self.dtype)
        return True

    def dtypes(self) -> tuple[np.dtype, ...] | None:
        """The dtypes that meet the requirement whatever the layout, float32 first (the engine's
        compiled check is one `in` test on the block's dtype); None when layout matters too
        (`c_contiguous`), so each block needs the full `satisfied_by`."""
        if self.c_contiguous:
            return None
        if self.dtype == "floating":
            return tuple(np.dtype(t) for t in (np.float32, np.float64, np.float16,
                                                np.longdouble))
        if self.dtype is not None:
            return (np.dtype(self.dtype),)
        return None

    def adapt(self, array: np.ndarray) -> np.ndarray:
        """A new array meeting the requirement. Integer PCM going to a float dtype is scaled to
        units of full scale (engine/levels.py), so int16 16384 becomes 0.5, never 16384.0; a
        float going to an integer dtype is scaled, rounded and clipped the same way."""
        if self.dtype == "floating":
            dtype = array.dtype if array.dtype.kind == "f" else np.dtype(np.float32)
        else:
            dtype = np.dtype(self.dtype or array.dtype)
        order = "C" if self.c_contiguous else "K"
        src = array.dtype
        if src.kind in "iu" and dtype.kind == "f":
            array = to_unit_float(array, dtype)
        elif src.kind == "f" and dtype.kind in "iu":
            array = from_unit_float(array, dtype)
        elif src.kind in "iu" and dtype.kind in "iu" and src != dtype:
            array = from_unit_float(to_unit_float(array, np.float64), dtype)
        else:
            return np.array(array, dtype=dtype, order=order, copy=True)
        # The conversions above made a new buffer: only its layout may still need fixing.
        return np.asarray(array, dtype=dtype, order=order) if not (
            array.dtype == dtype and (array.flags.c_contiguous or order == "K")) else array


#: The engine's audio defaults, defined here once: 20 ms blocks of 960 samples at 48 kHz, mono.
#: A manifest's `audio` and a file's own format override them.
DEFAULT_SAMPLE_RATE = 48000     # Hz
DEFAULT_BLOCK_SIZE = 960        # samples per channel per block
DEFAULT_CHANNELS = 1
#: The largest value of each audio key a run accepts, wherever it comes from (a manifest's
#: `audio`, an upstream manifest's `metadata.cli_defaults`, the command line): beyond them a run
#: only allocates what then fails. 768 kHz is the highest rate audio interfaces offer;
#: 1024 channels is libsndfile's SF_MAX_CHANNELS; 2**20 samples is 21.8 s at 48 kHz.
AUDIO_LIMITS = {"sample_rate": 768_000, "channels": 1024, "block_size": 1 << 20}
_AUDIO_UNITS = {"sample_rate": " Hz", "channels": " channels", "block_size": " samples"}


def audio_value_problem(key: str, value) -> str | None:
    """Why `value` cannot be the audio key `key` ('sample_rate', 'channels', 'block_size'):
    'must be a whole number from 1 to LIMIT UNIT, got VALUE', or None when it can."""
    limit = AUDIO_LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        return f"must be a whole number from 1 to {limit}{_AUDIO_UNITS[key]}, got {shown(value)}"
    return None


@dataclass(frozen=True)
class AudioFormat:
    """What is known about a stream at one edge: None means unknown or any."""

    sample_rate: int | None = None
    channels: int | None = None
    block_size: int | None = None
    carries_audio: bool = True      # False where only events flow (a VAD passing no audio)

    def replace(self, **changes) -> "AudioFormat":
        """A copy with the given fields changed (sample_rate in Hz, channels, block_size in
        samples)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class NodeContext:
    """What a node may know of the session that runs it, handed over once by `Node.bind()`
    before `setup()`:

    - `node_id`: the node's id in the manifest;
    - `format`: its input format as validation worked it out (rate in Hz, channels, block size
      in samples; None where unknown or variable), merged over its inputs for fan-in nodes;
    - `counters`: the session's Counters, for executor nodes that account for the io copies,
      drops and errors of their hop (a plain node counts nothing itself);
    - `clock`: the run's clock, seconds since the run started (real for devices, simulated for
      files), or None outside a run. Nodes that need time use media time (pts) or the block's
      arrival time; this is for executors' deadlines and waits, never the wall clock.
    """

    node_id: str
    format: AudioFormat
    counters: Any = None
    clock: Callable[[], float] | None = None



def as_outputs(result) -> list:
    """A node's result from process() or on_control() (None, one RuntimeData, or an iterable
    of them) as a list, for whatever runs a node away from the engine (a worker thread,
    process or actor). A generator runs here. TypeError naming the first item that is not
    RuntimeData."""
    if result is None:
        return []
    if isinstance(result, RuntimeData):
        return [result]
    outputs = list(result)
    for out in outputs:
        if not isinstance(out, RuntimeData):
            raise TypeError(f"process() returned {type(out).__name__}, not RuntimeData")
    return outputs


class Node:
    """Base class of every node. Subclasses set the class attributes and override `process`.

    Threads: `setup` runs when the session opens and `teardown` when it closes, on the thread
    that opens and closes it; `process` and `on_control` run on the thread that pushes
    (Session.push): the runner thread in queued mode, the device's audio callback in callback
    mode, so they must not block. A node that must block or is slow goes on its own executor
    (`executor: thread`, `process` or `ray`; `default_executor` makes one its default). Audio arrives as NumpyData with an ndarray of
    (samples,) or (samples, channels), pts in samples at the stream's rate.
    """

    node_type: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    inputs: ClassVar[str] = "one"            # "one", or "many" for fan-in keyed by input name
    #: input names a connection may close a cycle into (an echo canceller's `reference` from
    #: the node that feeds the output): its frames go to feedback(), and process() runs
    #: without waiting for them (the key is then absent from its frames)
    feedback_inputs: ClassVar[tuple[str, ...]] = ()
    accepts: ClassVar[frozenset[str]] = frozenset({"numpy"})
    requires: ClassVar[InputRequirement | None] = None
    retains_input: ClassVar[bool] = False    # True if process() keeps its input frame
    #: True if the node reads each block's arrival time (metadata "arrival_us", on the run's
    #: clock): the runner stamps blocks only when some node of the graph asks for it
    uses_arrival_time: ClassVar[bool] = False
    #: True if the node wants to know when the run's output played (engine/playclock.py): a
    #: device run then sets `play_clock` before the first block; otherwise it stays None.
    #: Only a node that runs inline (no executor) gets it.
    uses_play_clock: ClassVar[bool] = False
    play_clock = None
    #: True if the node is linear and elementwise: every output sample is its input sample
    #: times one real factor, `linear_gain()`, and the node does nothing else (no state, no
    #: events, same shape and dtype; `requires` a float dtype). The engine then runs it as that
    #: multiply, in place where the buffer allows, and fuses a chain of such nodes into one
    #: multiply by the product of their factors (Schedule, "linear steps"); process() must give
    #: the same samples, which remotemedia.testing.check_node verifies.
    linear_elementwise: ClassVar[bool] = False
    #: the executor the node runs on when its manifest entry names none ("thread" for a node
    #: whose process() runs inference: it then never runs on the block path); a manifest's
    #: `executor:` overrides it, `executor: inline` included
    default_executor: ClassVar[str] = "inline"
    #: failures the node handled itself (an executor that restarts a crashed worker, say);
    #: they appear in the node's `errors` beside the ones the engine saw
    errors_absorbed: int = 0

    def __init__(self, node_id: str = "", **params: Any):
        self.node_id = node_id or self.node_type
        self.config = self.check_params(params)
        for name, value in self.config.items():
            setattr(self, name, value)
        self.format = AudioFormat()
        self.context: NodeContext | None = None

    def bind(self, context: NodeContext) -> None:
        """Called by whatever runs the node (a session, a process worker, a Ray actor) once,
        before setup(): keeps the context, and its input format as `self.format`."""
        self.context = context
        self.format = context.format

    @classmethod
    def rename_aliases(cls, params: dict) -> tuple[dict, list[str]]:
        """`params` with every deprecated alias (`Param.aliases`) under its current name, and
        one warning line per alias used, naming the new name. ValueError when a param is given
        under both names."""
        renames = {a: p.name for p in cls.params for a in p.aliases}
        if not renames or not any(k in renames for k in params):
            return params, []
        out: dict = {}
        given_as: dict[str, str] = {}
        notes: list[str] = []
        for key, value in params.items():
            name = renames.get(key, key)
            if name != key:
                notes.append(f"param '{key}' of {cls.node_type} is deprecated; "
                             f"use '{name}' (same value and unit)")
            if name in out:
                old = key if key != name else given_as[name]
                raise ValueError(f"param '{name}' is given twice (as '{old}' too); give one")
            out[name] = value
            given_as[name] = key
        return out, notes

    @classmethod
    def check_params(cls, params: dict) -> dict:
        """Validated params with defaults filled in; ValueError names the first problem.
        A deprecated alias is accepted with a DeprecationWarning (the manifest loader renames
        it first and reports a warning line instead)."""
        params, notes = cls.rename_aliases(params)
        for note in notes:
            warnings.warn(note, DeprecationWarning, stacklevel=2)
        known = {p.name: p for p in cls.params}
        unknown = [k for k in params if k not in known]
        if unknown:
            hint = _did_you_mean(unknown[0], known)
            raise ValueError(f"unknown param '{unknown[0]}' for {cls.node_type}{hint}"
                             f" (known: {', '.join(known) or 'none'})")
        out = {}
        for p in cls.params:
            if p.name in params:
                out[p.name] = p.check(params[p.name])
            elif p.required:
                raise ValueError(f"missing required param '{p.name}' for {cls.node_type}")
            else:
                out[p.name] = p.default
        cls.check_config(out)
        return out

    @classmethod
    def check_config(cls, config: dict) -> None:
        """Cross-parameter checks; raise ValueError with one line."""

    # -- format ----------------------------------------------------------------------------------
    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        """The format this node emits for input `fmt`; raise ValueError if it cannot take it."""
        return fmt

    def declared_input(self) -> AudioFormat:
        """The input rate (Hz) and channel count this node's params pin (a resampler's source
        rate, a model's native rate), None where it takes any. Where the run's input reaches
        the node unchanged, this decides the run's format when nothing above it does (the
        precedence in engine/precedence.py). Called on a validation probe: params set, setup()
        not run."""
        return AudioFormat()

    def merge_formats(self, formats: dict[str, AudioFormat]) -> AudioFormat:
        """For fan-in nodes: all inputs must agree on what they declare."""
        rates = {f.sample_rate for f in formats.values() if f.sample_rate is not None}
        if len(rates) > 1:
            raise ValueError("inputs disagree on sample rate: " + ", ".join(
                f"{k}={f.sample_rate}" for k, f in formats.items()))
        chans = {f.channels for f in formats.values() if f.channels is not None}
        if len(chans) > 1:
            raise ValueError("inputs disagree on channel count: " + ", ".join(
                f"{k}={f.channels}" for k, f in formats.items()))
        first = next(iter(formats.values()), AudioFormat())
        return AudioFormat(rates.pop() if rates else None, chans.pop() if chans else None,
                           first.block_size)

    # -- lifecycle -------------------------------------------------------------------------------
    def setup(self) -> None:
        """Called once before the first frame: load models, allocate buffers."""

    def teardown(self) -> None:
        """Called once when the session closes."""

    def process(self, data):
        """Return None, one RuntimeData, or an iterable of them. For inputs="many" `data` is a
        dict of input name -> RuntimeData."""
        raise NotImplementedError

    def linear_gain(self) -> float:
        """For a `linear_elementwise` node: the factor (a finite real number, linear, not dB) it
        multiplies every sample by now. The engine calls it once per block, so a factor that
        changes between blocks takes effect at the next block. NotImplementedError otherwise."""
        if self.linear_elementwise:
            raise NotImplementedError(f"{type(self).__name__} declares linear_elementwise but "
                                      f"does not implement linear_gain()")
        raise NotImplementedError(f"{type(self).__name__} is not linear_elementwise")

    def feedback(self, name: str, frame: RuntimeData) -> None:
        """A Numpy frame on the feedback connection into input `name` (one of
        `feedback_inputs`), as its source made it; the frame is read-only and not the node's to
        keep (copy what it needs). NotImplementedError unless the node declares such inputs."""
        raise NotImplementedError(f"{type(self).__name__} takes no feedback input '{name}'")

    def on_control(self, event: RuntimeData) -> Iterable[RuntimeData] | None:
        """Handle a Control event (flush, end_of_stream, reset, ...) before it passes on; return
        any frames it releases (a buffering node flushes its remainder here)."""
        return None

    @classmethod
    def describe(cls) -> dict:
        """The node type as JSON-ready data for `remotemedia nodes`: node_type, description,
        inputs and each Param's describe()."""
        return {"node_type": cls.node_type, "description": cls.description,
                "inputs": cls.inputs, "params": [p.describe() for p in cls.params]}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.node_id!r}>"


def _did_you_mean(name: str, candidates) -> str:
    candidates = list(candidates)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not close:  # a different case, or swapped letters ("bd" for "db")
        key = sorted(name.lower())
        close = [c for c in candidates if sorted(c.lower()) == key][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


# -- registry -------------------------------------------------------------------------------------

ENTRY_POINT_GROUP = "remotemedia.nodes"


class NodeRegistry:
    """Node types by name: built-ins, entry points (group `remotemedia.nodes`), and classes
    named by import path where the caller allows that module."""

    def __init__(self):
        self._types: dict[str, type[Node]] = {}
        self._entry_points_loaded = False

    def register(self, cls: type[Node], name: str | None = None) -> type[Node]:
        """Adds `cls` under `name` (default: its node_type, else its class name, which then
        becomes its node_type); a later registration of the same name replaces the earlier.
        TypeError if `cls` is not a Node subclass. Returns `cls`, so it works as a decorator."""
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise TypeError(f"{cls!r} is not a Node subclass")
        name = name or cls.node_type or cls.__name__
        if not cls.node_type:
            cls.node_type = name
        self._types[name] = cls
        return cls

    def load_entry_points(self) -> None:
        """Loads the `remotemedia.nodes` entry point group once: a Node subclass is registered, a
        callable is called with this registry (to register several). An entry point's import
        errors propagate."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            obj = ep.load()
            if isinstance(obj, type) and issubclass(obj, Node):
                self.register(obj, ep.name if not obj.node_type else None)
            elif callable(obj):
                obj(self)  # a function that registers several types

    def names(self) -> list[str]:
        """The registered node type names, sorted (entry points loaded first)."""
        self._ensure_loaded()
        return sorted(self._types)

    def types(self) -> dict[str, type[Node]]:
        """Node type name -> class, sorted by name (entry points loaded first)."""
        self._ensure_loaded()
        return dict(sorted(self._types.items()))

    def resolve(self, name: str, allow_import: Iterable[str] = ()) -> type[Node]:
        """The class for node type `name`. A dotted or `module:Class` name is imported only if
        its module is in `allow_import` (importing runs its code). UnknownNodeType, with a
        did-you-mean hint, otherwise."""
        self._ensure_loaded()
        cls = self._types.get(name)
        if cls is not None:
            return cls
        if ":" in name or "." in name:
            return self._import(name, tuple(allow_import))
        raise UnknownNodeType(name, _did_you_mean(name, self._types))

    def _import(self, path: str, allowed: tuple[str, ...]) -> type[Node]:
        module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
        if not any(module_name == m or module_name.startswith(m + ".") for m in allowed):
            raise UnknownNodeType(path, f" (importing '{module_name}' runs its code; allow it "
                                        f"with --allow-import {module_name})")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownNodeType(path, f" (cannot import: {one_line(exc)})") from exc
        except (Exception, SystemExit) as exc:
            # Importing runs the module's code: whatever it raises (sys.exit included) is the
            # module's fault, told in one line naming it, never a traceback.
            raise UnknownNodeType(path, f" (importing module '{module_name}' failed: "
                                        f"{type(exc).__name__}: {one_line(exc)})") from exc
        if not (isinstance(obj, type) and issubclass(obj, Node)):
            raise UnknownNodeType(path, " (not a Node subclass)")
        return obj

    def _ensure_loaded(self) -> None:
        # Built-ins come in through the same entry point group as everyone else's
        # (`builtins = remotemedia.nodes:register_builtins` in pyproject.toml): the engine
        # imports no node module itself.
        self.load_entry_points()


registry = NodeRegistry()


def register_node(cls: type[Node] | None = None, *, name: str | None = None):
    """Class decorator: add a Node subclass to the default registry."""
    def deco(c):
        return registry.register(c, name)
    return deco(cls) if cls is not None else deco


def node_function(name: str | None = None, *, description: str = "",
                  registry_: NodeRegistry | None = None):
    """Register a plain function `fn(frame, **params)` as a node.

    Keyword parameters with defaults become typed params (the type of the default, or the
    annotation). The function may return None, RuntimeData, an iterable of RuntimeData, or an
    ndarray, which becomes a frame carrying the input's timing and metadata.
    """
    def deco(fn: Callable):
        sig = inspect.signature(fn)
        params = []
        for p in list(sig.parameters.values())[1:]:
            ptype = p.annotation if isinstance(p.annotation, type) else (
                type(p.default) if p.default is not inspect.Parameter.empty else float)
            default = REQUIRED if p.default is inspect.Parameter.empty else p.default
            params.append(Param(p.name, ptype, default))
        names = tuple(p.name for p in params)

        def process(self, data):
            result = fn(data, **{n: getattr(self, n) for n in names})
            if isinstance(result, np.ndarray) and isinstance(data, NumpyData):
                return data.with_array(result)
            return result

        cls = type(fn.__name__, (Node,), {
            "node_type": name or fn.__name__,
            "description": description or (inspect.getdoc(fn) or "").split("\n")[0],
            "params": tuple(params),
            "process": process,
            "__module__": fn.__module__,
            "__doc__": fn.__doc__,
        })
        (registry_ or registry).register(cls)
        cls.function = staticmethod(fn)
        return cls
    return deco
