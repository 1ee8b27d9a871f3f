"""The Ray actor that runs one node, and the format frames cross in (both sides import this).

This module imports no Ray: `proxy` wraps `NodeActor` with `ray.remote` when a manifest asks for
`executor: ray`, so the actor class travels to the cluster by reference (`remotemedia.ray.actor`
must be importable on every Ray worker, which installing remotemedia there gives).

What crosses. A request is one `bytes` object made by `pickle.dumps(..., protocol=5)` of a
packed RuntimeData: a `RuntimeData.Numpy` pickles through its own `__reduce__` (so the engine's
serialization monitor counts the array, as it counts any pickle), and the other kinds cross as
plain tuples. The answer is `(status, payload, arrays)`: `status` "ok" with the pickled list of
outputs and the number of arrays the actor pickled into it, or "error" with the node's exception
type and message (the actor never raises for a node's error, so a raise inside Ray means the
actor itself is gone). Ray then ships that `bytes` object through its object store, which copies
it again on both sides; those copies are Ray's and are not counted one by one.
"""

from __future__ import annotations

import importlib
import os
import pickle
import socket
import sys

from ..engine.data import (BinaryData, ControlData, JsonData, NumpyData, RuntimeData, TextData)
from ..engine.node import AudioFormat, NodeContext, as_outputs

PROTOCOL = 5
_VALUE_KINDS = {"text": TextData, "json": JsonData, "binary": BinaryData,
                "control": ControlData}


def pack(items: list) -> bytes:
    """Pickle a list of RuntimeData; raise TypeError for anything else (one line)."""
    packed = []
    for item in items:
        kind = getattr(item, "kind", None)
        if type(item) is NumpyData:
            packed.append(item)   # NumpyData.__reduce__: the array is pickled (and counted)
        elif kind in _VALUE_KINDS and isinstance(item, RuntimeData):
            packed.append((kind, item.payload, item.pts, dict(item.metadata)))
        else:
            raise TypeError(f"a node output must be RuntimeData, not {type(item).__name__}")
    return pickle.dumps(packed, protocol=PROTOCOL)


def unpack(payload: bytes) -> list:
    """The inverse of `pack`: a list of RuntimeData (arrays read-only, as the engine hands them)."""
    out = []
    for item in pickle.loads(payload):
        if type(item) is tuple:
            kind, value, pts, metadata = item
            out.append(_VALUE_KINDS[kind](value, pts=pts, metadata=metadata))
        else:
            out.append(item)
    return out


def _import_class(path: str):
    module_name, _, qualname = path.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class NodeActor:
    """Holds one node for the life of the actor; one method call per request, in order.

    `config`: node_class ("module:qualname"), node_id, params (dict), format (sample_rate,
    channels, block_size), sys_path (entries the driver had, appended where missing so that a
    node module beside the driver imports on a worker of the same machine)."""

    def __init__(self, config: dict):
        for entry in config.get("sys_path", ()):
            if entry not in sys.path:
                sys.path.append(entry)
        cls = _import_class(config["node_class"])
        self.node = cls(config["node_id"], **config["params"])
        self.node.bind(NodeContext(config["node_id"], AudioFormat(**config["format"])))
        self.node.setup()

    def ready(self) -> dict:
        """Where the node runs: its pid and host (the handshake before the first frame)."""
        return {"pid": os.getpid(), "host": socket.gethostname()}

    def call(self, request: bytes) -> tuple:
        """Run one request (a frame or a control event) through the node."""
        (data,) = unpack(request)
        try:
            if type(data) is ControlData:
                result = self.node.on_control(data)
            else:
                result = self.node.process(data)
            outputs = as_outputs(result)   # a control event itself passes on in the engine
            payload = pack(outputs)
        except Exception as exc:   # the node's failure: the proxy applies on_error
            return ("error", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return ("ok", payload, sum(type(o) is NumpyData for o in outputs))

    def stop(self) -> None:
        """Runs the node's teardown() in the actor; the driver then kills the actor."""
        self.node.teardown()
