"""Writing RuntimeData into a loaned sample and reading it back as a view: both sides use these.

Writing a numpy frame copies the array's bytes once, straight from the frame's memory into the
loaned sample (one `memmove` of the span it touches, or one `np.copyto` for a very sparse view);
the header beside it is metadata only. Reading wraps the sample in a read-only ndarray with the
sender's dtype, shape and strides and no copy; the sample stays borrowed while the array lives.
"""

from __future__ import annotations

import ctypes
import traceback

import numpy as np

from ..engine.data import BinaryData, ControlData, JsonData, NumpyData, TextData
from . import codec
from .channel import Borrowed


_DTYPES: dict[np.dtype, bytes] = {}
_ARRAY_TYPES: dict[int, type] = {}


def _bytes_type(n: int) -> type:
    t = _ARRAY_TYPES.get(n)
    if t is None:
        t = ctypes.c_uint8 * n
        if len(_ARRAY_TYPES) < 1024:
            _ARRAY_TYPES[n] = t
    return t


def _dtype_bytes(dtype: np.dtype) -> bytes:
    name = _DTYPES.get(dtype)
    if name is None:
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise codec.CodecError(f"dtype {dtype} cannot cross a process boundary "
                                   f"(plain numeric, bool, bytes and datetime dtypes can)")
        name = dtype.str.encode("ascii")
        _DTYPES[dtype] = name
    return name


def encode_meta(data) -> bytes:
    """The metadata bytes of any RuntimeData (computed first, so worker counts can follow)."""
    return codec.encode_metadata(data.metadata)


def send_data(publisher, data, request_id: int, *, flags: int = 0, meta: bytes | None = None,
              cow: int = 0, worker_io: int = 0, worker_ser: int = 0) -> None:
    """Loan a sample, write `data` into it, send it."""
    if meta is None:
        meta = codec.encode_metadata(data.metadata)
    if type(data) is NumpyData:
        _send_array(publisher, data, request_id, flags, meta, cow, worker_io, worker_ser)
        return
    if type(data) is TextData:
        kind, payload = codec.TEXT, data.text.encode("utf-8")
    elif type(data) is BinaryData:
        kind, payload = codec.BINARY, data.data
    elif type(data) is JsonData:
        kind, payload = codec.JSON, codec.encode_value(data.value)
    elif type(data) is ControlData:
        kind, payload = codec.CONTROL, data.event.encode("ascii")
    else:
        raise codec.CodecError(f"{type(data).__name__} cannot cross a process boundary")
    send_bytes(publisher, kind, request_id, payload, flags=flags, pts=data.pts, meta=meta,
               cow=cow, worker_io=worker_io, worker_ser=worker_ser)


def send_bytes(publisher, kind: int, request_id: int, payload: bytes = b"", *, flags: int = 0,
               pts=None, meta: bytes = b"", cow: int = 0, worker_io: int = 0,
               worker_ser: int = 0) -> None:
    """Sends one message with a byte payload (text, json, control, done, error...) of `kind`
    for `request_id`: loans a slice, writes the header (codec.encode_header) and the payload,
    sends. iceoryx2's errors (a full queue under DiscardData is not one) propagate."""
    hlen = codec.header_size(0, 0, len(meta))
    size = hlen + len(payload)
    sample = publisher.loan_slice_uninit(size)
    ptr = sample.payload_ptr
    codec.encode_header(_bytes_type(size).from_address(ptr), kind, request_id, flags=flags,
                        pts=pts, meta=meta, payload_len=len(payload), cow=cow,
                        worker_io=worker_io, worker_ser=worker_ser)
    if payload:
        ctypes.memmove(ptr + hlen, payload, len(payload))
    sample.assume_init().send()


def _send_array(publisher, data: NumpyData, request_id, flags, meta, cow, worker_io,
                worker_ser) -> None:
    a = data.array
    dtype = _dtype_bytes(a.dtype)
    a_flags = a.flags
    contiguous = a.size and (a_flags.c_contiguous or a_flags.f_contiguous)
    if contiguous:
        strides, pad, data_offset, payload_len = a.strides, 0, 0, a.nbytes
    else:
        low, span, compact = codec.array_span(a)
        if compact:
            strides = _c_strides(a.shape, a.itemsize)
            pad, data_offset, payload_len = 0, 0, a.nbytes
        else:
            strides = a.strides
            pad = low % codec.ALIGN            # keep the source's alignment within 64 bytes
            data_offset = pad + (a.__array_interface__["data"][0] - low)
            payload_len = pad + span
    hlen = codec.header_size(a.ndim, len(dtype), len(meta))
    size = hlen + payload_len
    sample = publisher.loan_slice_uninit(size)
    buf = _bytes_type(size).from_address(sample.payload_ptr)
    codec.encode_header(buf, codec.NUMPY, request_id, flags=flags, sample_rate=data.sample_rate,
                        pts=data.pts, seq=data.seq, meta=meta, shape=a.shape, strides=strides,
                        data_offset=data_offset, dtype=dtype, payload_len=payload_len, cow=cow,
                        worker_io=worker_io, worker_ser=worker_ser)
    if contiguous or compact:   # the one copy, element by element into the same layout
        if a.size:
            np.copyto(np.ndarray(a.shape, a.dtype, buffer=buf, offset=hlen, strides=strides), a)
    else:                       # the one copy, of the span the view touches
        ctypes.memmove(sample.payload_ptr + hlen + pad, low, span)
    sample.assume_init().send()


def _c_strides(shape, itemsize) -> tuple[int, ...]:
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def receive(subscriber, borrowed: Borrowed, *, copy_out: bool = False):
    """(header, RuntimeData or None, copied) for the next sample, or None if there is none.

    A numpy payload becomes a read-only view that keeps the sample borrowed; `copy_out`
    copies it instead and releases the sample at once (then `copied` is True)."""
    sample = subscriber.receive()
    if sample is None:
        return None
    buf = borrowed.buffer(sample)
    del sample
    h = codec.decode_header(buf)
    kind = h.kind
    copied = False
    if kind == codec.NUMPY:
        if copy_out:
            # Copy the span, not the elements, so the strides stay exactly as sent.
            span = np.empty(h.payload_len, dtype=np.uint8)
            ctypes.memmove(span.ctypes.data, ctypes.addressof(buf) + h.header_len,
                           h.payload_len)
            array = np.ndarray(h.shape, np.dtype(h.dtype), buffer=span, offset=h.data_offset,
                               strides=h.strides)
            copied = True
        else:
            array = np.ndarray(h.shape, np.dtype(h.dtype), buffer=buf,
                               offset=h.header_len + h.data_offset, strides=h.strides)
        array.flags.writeable = False
        return h, NumpyData(array, sample_rate=h.sample_rate, pts=h.pts, seq=h.seq,
                            metadata=h.metadata), copied
    payload = (ctypes.string_at(ctypes.addressof(buf) + h.header_len, h.payload_len)
               if h.payload_len else b"")
    if kind == codec.TEXT:
        data = TextData(payload.decode("utf-8"), pts=h.pts, metadata=h.metadata)
    elif kind == codec.BINARY:
        data = BinaryData(payload, pts=h.pts, metadata=h.metadata)
    elif kind == codec.JSON:
        data = JsonData(codec.decode_value_bytes(payload), pts=h.pts, metadata=h.metadata)
    elif kind == codec.CONTROL:
        data = ControlData(payload.decode("ascii"), pts=h.pts, metadata=h.metadata)
    elif kind == codec.ERROR:
        data = codec.decode_value_bytes(payload)
    elif kind == codec.READY:
        data = payload.decode("utf-8")
    else:
        data = None
    return h, data, copied


def error_payload(exc: BaseException) -> bytes:
    """An exception as the tagged-format payload of an ERROR message: type name, message and
    the last 4000 characters of its traceback."""
    tb = "".join(traceback.format_exception(exc))
    return codec.encode_value({"type": type(exc).__name__, "message": str(exc),
                               "traceback": tb[-4000:]})
