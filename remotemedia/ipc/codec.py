"""The frame header: what crosses beside the array bytes, in a small documented binary format.

One message is one iceoryx2 sample, a slice of bytes laid out as:

    offset  size  field (all little-endian)
    0       4     magic b"RMX1"
    4       1     version (1)
    5       1     kind: 1 numpy, 2 text, 3 json, 4 binary, 5 control, 6 done, 7 error,
                  8 ready, 9 stop
    6       1     flags: bit0 LAST (the final message answering a request), bit1 has
                  sample_rate, bit2 has pts, bit3 has seq, bit4 SPIN (the engine busy-polls
                  for this answer, so the worker may busy-poll for the next request)
    7       1     ndim (numpy only; at most 32)
    8       8     u64 request id (the parent numbers every request; replies echo it)
    16      8     i64 sample_rate
    24      8     i64 pts
    32      8     i64 seq
    40      4     u32 header_len: where the payload region starts (a multiple of 64)
    44      4     u32 metadata_len
    48      2     u16 dtype_len
    50      2     u16 cow copies the worker made for this request
    52      2     u16 io copies the worker made beyond the one per crossing
    54      2     u16 serialization events in the worker for this request
    56      8     u64 payload_len
    64      8*n   i64 shape[n]            (n = ndim; 0 for anything but numpy)
    ..      8*n   i64 strides[n] (bytes, exactly as the sender's array had them)
    ..      8     i64 data offset: where element 0 sits inside the payload region
    ..      d     dtype as numpy's `dtype.str` ("<f4", "<i2", ...), ASCII (empty if not numpy)
    ..      m     metadata mapping, encoded with the tagged format below (empty if none)
    ..            zero padding up to header_len
    header_len    payload_len bytes of payload

The payload of a numpy message is the array's memory copied once: element by element for a C-
or F-contiguous array, else the whole span the view touches, so strides (negative, F-order, every
other sample) are preserved exactly. A view so sparse that its span exceeds 4x its own bytes plus
4 KiB is compacted to C order instead (its strides then become C strides). Text and control payloads are UTF-8,
binary is raw, json and error payloads use the tagged format.

Tagged format (metadata mappings and Json values): one tag byte, then
    N None | T True | F False | i i64 | I big int as decimal UTF-8 (u32 length) | d f64 |
    s str (u32 length, UTF-8) | b bytes (u32 length) | l list (u32 count, items) |
    m mapping (u32 count, then key str without its tag and value pairs) |
    a ndarray (u16 dtype length, dtype str, u8 ndim, i64 shape..., C-order bytes).
Encoding an ndarray inside metadata really serializes it, so it is counted through
`record_encode(array, "ipc")`; array payloads never are: they are copied, not encoded.
No pickle anywhere.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

import numpy as np

from ..engine.errors import CodecError  # noqa: F401 (raised here; its home is the error tree)
from ..engine.serialization import record_encode

MAGIC = b"RMX1"
VERSION = 1

NUMPY, TEXT, JSON, BINARY, CONTROL, DONE, ERROR, READY, STOP = range(1, 10)
KIND_NAMES = {NUMPY: "numpy", TEXT: "text", JSON: "json", BINARY: "binary", CONTROL: "control"}
KIND_CODES = {v: k for k, v in KIND_NAMES.items()}

LAST = 1
HAS_RATE = 2
HAS_PTS = 4
HAS_SEQ = 8
SPIN = 16

ALIGN = 64
MAX_NDIM = 32
SPARSE_LIMIT = 4   # compact a view whose span exceeds its own bytes this many times

FIXED = struct.Struct("<4sBBBBQqqqIIHHHHQ")
assert FIXED.size == 64


class Header:
    """A decoded header. `shape`/`strides`/`dtype`/`data_offset` are set for numpy messages."""

    __slots__ = ("kind", "flags", "request_id", "sample_rate", "pts", "seq", "header_len",
                 "payload_len", "shape", "strides", "data_offset", "dtype", "metadata",
                 "cow", "worker_io", "worker_ser")

    @property
    def last(self) -> bool:
        """True for the final message answering a request (flag bit0 LAST)."""
        return bool(self.flags & LAST)


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def array_span(array: np.ndarray) -> tuple[int, int, bool]:
    """(low address, span bytes, compact) for copying `array` with one memmove.

    `compact` is True when the span is so much larger than the array's own bytes that it is
    cheaper to copy the elements into C order instead."""
    if array.size == 0:
        return 0, 0, True
    low = high = array.__array_interface__["data"][0]
    for n, s in zip(array.shape, array.strides):
        if s < 0:
            low += (n - 1) * s
        else:
            high += (n - 1) * s
    span = high - low + array.itemsize
    return low, span, span > SPARSE_LIMIT * array.nbytes + 4096


_LAYOUTS: dict[tuple[int, int, int], tuple[struct.Struct, struct.Struct, int]] = {}


def _layout(ndim: int, dtype_len: int, meta_len: int):
    """(whole-header Struct, variable-part Struct, header_len), cached by sizes."""
    key = (ndim, dtype_len, meta_len)
    layout = _LAYOUTS.get(key)
    if layout is None:
        variable = f"{2 * ndim + 1}q{dtype_len}s{meta_len}s"
        body = FIXED.size + 8 * (2 * ndim + 1) + dtype_len + meta_len
        header_len = _align(body)
        layout = (struct.Struct(f"{FIXED.format}{variable}{header_len - body}x"),
                  struct.Struct(f"<{variable}"), header_len)
        if len(_LAYOUTS) < 4096:
            _LAYOUTS[key] = layout
    return layout


def header_size(ndim: int, dtype_len: int, meta_len: int) -> int:
    """Bytes of a header for `ndim` dimensions, a dtype string and metadata of these lengths,
    padded to a multiple of 64."""
    return _layout(ndim, dtype_len, meta_len)[2]


def encode_header(buf, kind: int, request_id: int, *, flags: int = 0,
                  sample_rate=None, pts=None, seq=None, meta: bytes = b"",
                  shape=(), strides=(), data_offset: int = 0, dtype: bytes = b"",
                  payload_len: int = 0, cow: int = 0, worker_io: int = 0,
                  worker_ser: int = 0) -> int:
    """Write a header at the start of `buf` (any writable buffer); return header_len."""
    ndim = len(shape)
    if ndim > MAX_NDIM:
        raise CodecError(f"{ndim} dimensions; at most {MAX_NDIM} cross a process boundary")
    if sample_rate is not None:
        flags |= HAS_RATE
    if pts is not None:
        flags |= HAS_PTS
    if seq is not None:
        flags |= HAS_SEQ
    whole, _, header_len = _layout(ndim, len(dtype), len(meta))
    whole.pack_into(buf, 0, MAGIC, VERSION, kind, flags, ndim, request_id,
                    sample_rate or 0, pts or 0, seq or 0, header_len, len(meta), len(dtype),
                    min(cow, 0xFFFF), min(worker_io, 0xFFFF), min(worker_ser, 0xFFFF),
                    payload_len, *shape, *strides, data_offset, dtype, meta)
    return header_len


def decode_header(buf) -> Header:
    """Read the header at the start of `buf` (any buffer: a memoryview or a ctypes array)."""
    size = len(buf)
    if size < FIXED.size:
        raise CodecError(f"message of {size} bytes is shorter than a header")
    (magic, version, kind, flags, ndim, request_id, rate, pts, seq, header_len, meta_len,
     dtype_len, cow, worker_io, worker_ser, payload_len) = FIXED.unpack_from(buf, 0)
    if magic != MAGIC or version != VERSION:
        raise CodecError(f"bad magic {magic!r} or version {version}")
    if header_len + payload_len > size:
        raise CodecError("header and payload run past the end of the message")
    _, variable, expected_len = _layout(ndim, dtype_len, meta_len)
    if header_len != expected_len:
        raise CodecError(f"header_len {header_len} does not match its fields ({expected_len})")
    values = variable.unpack_from(buf, FIXED.size)
    h = Header()
    h.kind, h.flags, h.request_id = kind, flags, request_id
    h.sample_rate = rate if flags & HAS_RATE else None
    h.pts = pts if flags & HAS_PTS else None
    h.seq = seq if flags & HAS_SEQ else None
    h.header_len, h.payload_len = header_len, payload_len
    h.cow, h.worker_io, h.worker_ser = cow, worker_io, worker_ser
    h.shape, h.strides, h.data_offset = values[:ndim], values[ndim:2 * ndim], values[2 * ndim]
    h.dtype = _dtype_name(values[-2])
    meta = values[-1]
    h.metadata = decode_value_bytes(meta) if meta else None
    return h


_DTYPE_NAMES: dict[bytes, str] = {}


def _dtype_name(raw: bytes) -> str:
    name = _DTYPE_NAMES.get(raw)
    if name is None:
        name = raw.decode("ascii")
        if len(_DTYPE_NAMES) < 256:
            _DTYPE_NAMES[raw] = name
    return name


# -- the tagged value format ------------------------------------------------------------------------

_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


def encode_value(value: Any) -> bytes:
    """`value` in the tagged format (module docstring); ndarrays inside count as serialization
    events. CodecError for a type it cannot encode."""
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(v: Any, out: bytearray) -> None:
    if v is None:
        out += b"N"
    elif v is True:
        out += b"T"
    elif v is False:
        out += b"F"
    elif isinstance(v, (int, np.integer)):
        v = int(v)
        if -(1 << 63) <= v < (1 << 63):
            out += b"i" + _I64.pack(v)
        else:
            text = str(v).encode()
            out += b"I" + _U32.pack(len(text)) + text
    elif isinstance(v, (float, np.floating)):
        out += b"d" + _F64.pack(float(v))
    elif isinstance(v, str):
        data = v.encode("utf-8")
        out += b"s" + _U32.pack(len(data)) + data
    elif isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
        out += b"b" + _U32.pack(len(data)) + data
    elif isinstance(v, np.bool_):
        out += b"T" if v else b"F"
    elif isinstance(v, Mapping):
        out += b"m" + _U32.pack(len(v))
        for key, item in v.items():
            if not isinstance(key, str):
                raise CodecError(f"mapping keys must be str to cross a process boundary, "
                                 f"got {type(key).__name__} {key!r}")
            data = key.encode("utf-8")
            out += _U32.pack(len(data)) + data
            _encode(item, out)
    elif isinstance(v, (list, tuple)):
        out += b"l" + _U32.pack(len(v))
        for item in v:
            _encode(item, out)
    elif isinstance(v, np.ndarray):
        # A real serialization of array bytes: counted like any other.
        record_encode(v, "ipc")
        dtype = v.dtype.str.encode("ascii")
        out += b"a" + _U16.pack(len(dtype)) + dtype + bytes([v.ndim])
        out += struct.pack(f"<{v.ndim}q", *v.shape)
        out += np.ascontiguousarray(v).tobytes()
    else:
        raise CodecError(f"{type(v).__name__} cannot cross a process boundary "
                         f"(use None, bool, int, float, str, bytes, list, dict or ndarray)")


def decode_value_bytes(buf) -> Any:
    """The value a tagged-format buffer holds; CodecError if it is malformed or has bytes left
    over."""
    value, pos = _decode(memoryview(buf), 0)
    if pos != len(buf):
        raise CodecError(f"{len(buf) - pos} stray bytes after a tagged value")
    return value


def _decode(buf: memoryview, pos: int):
    tag = buf[pos:pos + 1].tobytes()
    pos += 1
    if tag == b"N":
        return None, pos
    if tag == b"T":
        return True, pos
    if tag == b"F":
        return False, pos
    if tag == b"i":
        return _I64.unpack_from(buf, pos)[0], pos + 8
    if tag == b"d":
        return _F64.unpack_from(buf, pos)[0], pos + 8
    if tag in (b"s", b"b", b"I"):
        n = _U32.unpack_from(buf, pos)[0]
        pos += 4
        data = buf[pos:pos + n].tobytes()
        if tag == b"s":
            return data.decode("utf-8"), pos + n
        if tag == b"I":
            return int(data.decode("ascii")), pos + n
        return data, pos + n
    if tag == b"l":
        n = _U32.unpack_from(buf, pos)[0]
        pos += 4
        items = []
        for _ in range(n):
            item, pos = _decode(buf, pos)
            items.append(item)
        return items, pos
    if tag == b"m":
        n = _U32.unpack_from(buf, pos)[0]
        pos += 4
        mapping = {}
        for _ in range(n):
            k = _U32.unpack_from(buf, pos)[0]
            pos += 4
            key = buf[pos:pos + k].tobytes().decode("utf-8")
            pos += k
            mapping[key], pos = _decode(buf, pos)
        return mapping, pos
    if tag == b"a":
        k = _U16.unpack_from(buf, pos)[0]
        pos += 2
        dtype = np.dtype(buf[pos:pos + k].tobytes().decode("ascii"))
        pos += k
        ndim = buf[pos]
        pos += 1
        shape = struct.unpack_from(f"<{ndim}q", buf, pos)
        pos += 8 * ndim
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        array = np.frombuffer(buf[pos:pos + nbytes].tobytes(), dtype=dtype).reshape(shape)
        return array, pos + nbytes
    raise CodecError(f"unknown tag {tag!r} at byte {pos - 1}")


def encode_metadata(metadata: Mapping[str, Any]) -> bytes:
    """A metadata mapping in the tagged format; empty bytes for empty metadata."""
    return encode_value(dict(metadata)) if metadata else b""
