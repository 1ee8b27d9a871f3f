"""RuntimeData: the values that flow through a graph.

A closed family of immutable variants, reached as attributes of `RuntimeData`:

- `RuntimeData.Numpy`   an ndarray held as a read-only view, never a copy, plus sample_rate,
                        pts (in samples at sample_rate), seq and a read-only metadata mapping
- `RuntimeData.Text`    a str
- `RuntimeData.Json`    a JSON-shaped value (dict, list, numbers, strings)
- `RuntimeData.Binary`  bytes
- `RuntimeData.Control` a stream event: end_of_stream, flush, reset, discontinuity

Writability follows GStreamer's rule: `frame.writable()` hands back the frame's own buffer only
when the engine owns it (it allocated it, or the producer transferred it) and no other reader can
see it; otherwise it copies, and the copy is counted as one copy-on-write (`cow`) copy.
"""

from __future__ import annotations

from types import MappingProxyType
from operator import attrgetter
from typing import Any, ClassVar, Mapping

import numpy as np

EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})

#: `interrupt`: barge-in, the user spoke over the bot (a reply and its queued audio are dropped)
CONTROL_EVENTS = frozenset({"end_of_stream", "flush", "reset", "discontinuity", "interrupt"})

class BufferOwnership:
    """Shared by every frame that views one buffer: who may write it, and how many read it.

    `readers` is kept by the engine: each delivery of a frame to a consumer adds one, and a
    consumer that has finished with its input gives one back. `owned` is True when the buffer was
    allocated by the engine or a node, or handed over by its producer. `counters` is the session
    that last carried the buffer, so a copy-on-write copy is counted where it happens.
    """

    __slots__ = ("owned", "readers", "counters")

    def __init__(self, owned: bool, readers: int = 0, counters=None):
        self.owned = owned
        self.readers = readers
        self.counters = counters

    def __repr__(self) -> str:
        return f"BufferOwnership(owned={self.owned}, readers={self.readers})"


class _Immutable:
    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__qualname__} is immutable; use replace()")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__qualname__} is immutable")


class RuntimeData:
    """Base of the variants. `kind` names the variant: numpy, text, json, binary, control."""

    __slots__ = ()
    kind: ClassVar[str] = ""
    is_audio: ClassVar[bool] = False

    # Variants are attached below: RuntimeData.Numpy, .Text, .Json, .Binary, .Control
    Numpy: ClassVar[type]
    Text: ClassVar[type]
    Json: ClassVar[type]
    Binary: ClassVar[type]
    Control: ClassVar[type]


_set = object.__setattr__


def _freeze_metadata(metadata) -> Mapping[str, Any]:
    if metadata is None:
        return EMPTY_METADATA
    if isinstance(metadata, MappingProxyType):
        return metadata
    return MappingProxyType(dict(metadata))


class NumpyData(RuntimeData):
    """An ndarray as a read-only view: any dtype, any shape, any strides, preserved exactly.

    Fields are read-only properties over private slots: a frame is built with plain slot writes
    (it is made once per node per frame, so that cost matters) and cannot be changed after."""

    __slots__ = ("_array", "_sample_rate", "_pts", "_seq", "_metadata", "_source", "_ownership")
    kind = "numpy"
    is_audio = True

    @property
    def array(self) -> np.ndarray:
        """The samples, as a read-only ndarray view of the frame's buffer."""
        view = self._array
        if view is None:
            # Made on first use: a frame that only passes through never pays for it (~0.2 us).
            view = self._source.view()
            view.setflags(write=False)
            self._array = view
        return view

    sample_rate = property(attrgetter("_sample_rate"), doc="samples per second, or None")
    pts = property(attrgetter("_pts"), doc="time of the first sample, in samples")
    seq = property(attrgetter("_seq"), doc="frame counter")
    metadata = property(attrgetter("_metadata"), doc="read-only mapping passed on by nodes")
    ownership = property(attrgetter("_ownership"), doc="the buffer's BufferOwnership")

    def __init__(self, array, *, sample_rate: int | None = None, pts: int | None = None,
                 seq: int | None = None, metadata: Mapping[str, Any] | None = None,
                 owned: bool = False):
        source = array if isinstance(array, np.ndarray) else as_shared_array(array)
        self._source = source
        self._array = None
        self._sample_rate = sample_rate
        self._pts = pts
        self._seq = seq
        self._metadata = _freeze_metadata(metadata)
        self._ownership = BufferOwnership(owned)

    @classmethod
    def _make(cls, source, view, sample_rate, pts, seq, metadata, ownership):
        frame = _new(cls)
        frame._source = source
        frame._array = view
        frame._sample_rate = sample_rate
        frame._pts = pts
        frame._seq = seq
        frame._metadata = metadata
        frame._ownership = ownership
        return frame

    # -- shape helpers -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape, (samples,) or (samples, channels), without making its view."""
        return self._source.shape

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype, without making its view."""
        return self._source.dtype

    @property
    def samples(self) -> int:
        """Samples per channel: shape[0] ((samples,) or (samples, channels)); 1 for a 0-d array."""
        return self._source.shape[0] if self._source.ndim else 1

    @property
    def channels(self) -> int:
        """Channels: shape[1] of a (samples, channels) array, 1 for (samples,)."""
        return self._source.shape[1] if self._source.ndim >= 2 else 1

    # -- writing ---------------------------------------------------------------------------------
    def writable(self) -> np.ndarray:
        """A writable array with this frame's samples: its own buffer when no one else can see
        it, else a fresh copy (counted as one `cow` copy). Wrap the result with `with_array`."""
        ownership = self._ownership
        if ownership.owned and ownership.readers <= 1:
            source = self._source
            if not source.flags.writeable:
                try:
                    source.setflags(write=True)
                except ValueError:  # the memory underneath is read-only: fall through and copy
                    return self._copy_on_write()
            return source
        return self._copy_on_write()

    def _copy_on_write(self) -> np.ndarray:
        copy = self._source.copy(order="K")
        counters = self._ownership.counters
        if counters is not None:
            counters.cow += 1
        return copy

    # -- deriving --------------------------------------------------------------------------------
    def with_array(self, array: np.ndarray, **changes) -> "NumpyData":
        """A frame carrying `array` and this frame's sample_rate, pts, seq and metadata (override
        any with keywords). An array that may share this frame's buffer shares its ownership;
        any other array is taken as newly allocated and owned. This frame's own buffer (the array
        `writable()` returned, written in place) with no keywords gives back this very frame."""
        if array is self._source:
            # Written in place: nothing about the frame changed, so it is its own result (a
            # new frame object here cost half a microsecond per writing node per block).
            if not changes:
                return self
            view, ownership = self._array, self._ownership
        else:
            view = None
            if np.may_share_memory(array, self._source):
                ownership = self._ownership
            else:
                ownership = BufferOwnership(True, 0, self._ownership.counters)
        if not changes:
            return NumpyData._make(array, view, self._sample_rate, self._pts, self._seq,
                                   self._metadata, ownership)
        return self._derive(array, view, ownership, changes)

    def replace(self, **changes) -> "NumpyData":
        """The same samples with other sample_rate, pts, seq or metadata."""
        if "array" in changes:
            return self.with_array(changes.pop("array"), **changes)
        return self._derive(self._source, self._array, self._ownership, changes)

    def _derive(self, source, view, ownership, changes: dict) -> "NumpyData":
        sample_rate = changes.pop("sample_rate", self._sample_rate)
        pts = changes.pop("pts", self._pts)
        seq = changes.pop("seq", self._seq)
        metadata = _freeze_metadata(changes.pop("metadata", self._metadata))
        if changes:
            raise TypeError(f"unknown field(s): {', '.join(sorted(changes))}")
        return NumpyData._make(source, view, sample_rate, pts, seq, metadata, ownership)

    def __repr__(self) -> str:
        a = self._source
        return (f"RuntimeData.Numpy(shape={a.shape}, dtype={a.dtype}, "
                f"sample_rate={self._sample_rate}, pts={self._pts}, seq={self._seq})")

    def __reduce__(self):
        # Pickling a frame pickles its array, which the serialization monitor counts.
        return (_rebuild_numpy, (self.array, self._sample_rate, self._pts, self._seq,
                                 dict(self._metadata)))


_new = object.__new__


def _rebuild_numpy(array, sample_rate, pts, seq, metadata):
    return NumpyData(array, sample_rate=sample_rate, pts=pts, seq=seq, metadata=metadata)


class _ValueData(_Immutable, RuntimeData):
    """The non-audio variants: one payload field (named by `_field`), pts and metadata."""

    __slots__ = ("pts", "metadata")
    _field: ClassVar[str]
    #: the payload's type and its name in the TypeError, or None for any payload
    _payload_type: ClassVar[tuple[type, str] | None] = None

    def __init__(self, payload, *, pts: int | None = None, metadata=None):
        self._check(payload)
        _set(self, self._field, payload)
        _set(self, "pts", pts)
        _set(self, "metadata", _freeze_metadata(metadata))

    @classmethod
    def _check(cls, payload) -> None:
        """TypeError for a payload that is not `_payload_type`."""
        if cls._payload_type is not None and not isinstance(payload, cls._payload_type[0]):
            raise TypeError(f"{cls.__name__[:-4]} needs {cls._payload_type[1]}, not "
                            f"{type(payload).__name__}")

    @property
    def payload(self):
        return getattr(self, self._field)

    def __repr__(self):
        return f"RuntimeData.{type(self).__name__[:-4]}({self.payload!r})"

    def __eq__(self, other):
        return type(other) is type(self) and other.payload == self.payload

    __hash__ = None


class TextData(_ValueData):
    """RuntimeData.Text: a str (`text`), pts in samples or None, and frozen metadata. TypeError for
    a non-str."""

    __slots__ = ("text",)
    kind = "text"
    _field = "text"
    _payload_type = (str, "a str")


class JsonData(_ValueData):
    """RuntimeData.Json: an event or any JSON-able value (`value`), pts in samples or None, and
    frozen metadata. Written out as strict RFC 8259 JSON (engine/strictjson.py)."""

    __slots__ = ("value",)
    kind = "json"
    _field = "value"


class BinaryData(_ValueData):
    """RuntimeData.Binary: bytes (`data`), pts in samples or None, and frozen metadata. TypeError
    for non-bytes."""

    __slots__ = ("data",)
    kind = "binary"
    _field = "data"
    _payload_type = (bytes, "bytes")

    def __repr__(self):
        return f"RuntimeData.Binary({len(self.data)} bytes)"


class ControlData(_ValueData):
    """RuntimeData.Control: a stream event (`event`), one of CONTROL_EVENTS: `flush` (release
    what is buffered), `end_of_stream` (flush, and no more input follows), `reset` (drop state),
    `discontinuity` (the next block does not follow on in pts: flush and restart timing),
    `interrupt` (barge-in: stop the reply being made and drop what is queued for the output).
    ValueError for any other name. A node's on_control sees it first; then it passes to the
    node's consumers, as it does past nodes that do not handle it."""

    __slots__ = ("event",)
    kind = "control"
    _field = "event"

    @classmethod
    def _check(cls, payload):
        if payload not in CONTROL_EVENTS:
            raise ValueError(f"unknown control event {payload!r}; expected one of "
                             f"{', '.join(sorted(CONTROL_EVENTS))}")


RuntimeData.Numpy = NumpyData
RuntimeData.Text = TextData
RuntimeData.Json = JsonData
RuntimeData.Binary = BinaryData
RuntimeData.Control = ControlData


# -- conversion -----------------------------------------------------------------------------------

def _exposes_buffer(obj) -> bool:
    try:
        memoryview(obj).release()
    except TypeError:
        return False
    return True


def as_shared_array(obj) -> np.ndarray:
    """An ndarray over `obj`'s own memory, found by capability (array interface or buffer
    protocol). Raises TypeError when that is impossible without a copy."""
    if isinstance(obj, np.ndarray):
        return obj
    try:
        return np.asarray(obj) if _is_numpy_scalar(obj) else np.array(obj, copy=False)
    except ValueError as exc:  # numpy says a copy would be needed
        raise TypeError(f"{type(obj).__name__} cannot be viewed without a copy: {exc}") from exc


def _is_numpy_scalar(obj) -> bool:
    return isinstance(obj, np.generic)


def to_runtime_data(obj: Any) -> RuntimeData:
    """Convert a Python object to RuntimeData without copying array memory.

    ndarray and anything with `__array_interface__`, `__array_struct__` or the buffer protocol
    becomes Numpy (a view); str becomes Text; bytes becomes Binary (checked before the buffer
    protocol); a dict in the upstream audio shape becomes Numpy viewing its samples; any other
    dict, list, number or bool becomes Json. A numpy scalar has no buffer, so it becomes a 0-d
    array: the one documented copy.
    """
    if isinstance(obj, RuntimeData):
        return obj
    if isinstance(obj, np.ndarray):
        return NumpyData(obj)
    if isinstance(obj, str):
        return TextData(obj)
    if isinstance(obj, bytes):
        return BinaryData(obj)
    if isinstance(obj, np.generic):
        return NumpyData(np.asarray(obj))
    if isinstance(obj, dict):
        if obj.get("type") == "audio" and "samples" in obj:
            return _audio_dict_to_numpy(obj)
        return JsonData(obj)
    if (hasattr(obj, "__array_interface__") or hasattr(obj, "__array_struct__")
            or _exposes_buffer(obj)):
        return NumpyData(as_shared_array(obj))
    if obj is None or isinstance(obj, (list, tuple, int, float, bool)):
        return JsonData(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to RuntimeData")


def _audio_dict_to_numpy(obj: dict) -> NumpyData:
    samples = obj["samples"]
    array = samples if isinstance(samples, np.ndarray) else np.asarray(samples)
    channels = int(obj.get("channels", 1) or 1)
    if channels > 1 and array.ndim == 1:
        # Interleaved upstream samples: a (frames, channels) view, no copy for contiguous data.
        array = array.reshape(-1, channels)
    metadata = {k: v for k, v in obj.items()
                if k not in ("type", "samples", "sample_rate", "channels", "pts", "seq")}
    return NumpyData(array, sample_rate=obj.get("sample_rate"), pts=obj.get("pts"),
                     seq=obj.get("seq"), metadata=metadata or None)


def from_runtime_data(data: RuntimeData) -> Any:
    """The Python value inside: the same read-only ndarray view for Numpy, str, the JSON value,
    bytes, or the event name for Control."""
    if isinstance(data, NumpyData):
        return data.array
    if isinstance(data, TextData):
        return data.text
    if isinstance(data, JsonData):
        return data.value
    if isinstance(data, BinaryData):
        return data.data
    if isinstance(data, ControlData):
        return data
    raise TypeError(f"not RuntimeData: {type(data).__name__}")
