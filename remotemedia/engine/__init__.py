"""The engine: data model, nodes, manifests, sessions and counters. No I/O, no UI."""

from .data import RuntimeData, from_runtime_data, to_runtime_data
from .errors import (CodecError, DeviceError, DeviceLost, DeviceNotFound, ManifestError,
                     ModelError, NodeError, PipelineBroken, PipelineClosed, RemoteMediaError,
                     SerializationError, UnknownNodeType, UsageError)
from .manifest import Manifest, load_manifest
from .node import (AudioFormat, InputRequirement, Node, NodeRegistry, Param, node_function,
                   register_node, registry)
from .serialization import record_encode
from .session import Pipeline, Session

__all__ = [
    "AudioFormat", "CodecError", "DeviceError", "DeviceLost", "DeviceNotFound", "InputRequirement",
    "Manifest", "ManifestError", "ModelError", "Node", "NodeError", "NodeRegistry", "Param",
    "Pipeline", "PipelineBroken", "PipelineClosed", "RemoteMediaError", "RuntimeData",
    "SerializationError", "Session", "UnknownNodeType", "UsageError", "from_runtime_data",
    "load_manifest", "node_function", "record_encode", "register_node", "registry",
    "to_runtime_data",
]
