"""remotemedia: real-time audio pipelines from a manifest, zero-copy and measured.

    import remotemedia as rm
    pipeline = rm.Pipeline.from_manifest("manifests/gain.yaml")
    with pipeline.session() as session:
        outputs = session.push(frame)        # direct calls, no copies
        print(session.stats())

Importing remotemedia does not import sounddevice: PortAudio is loaded only when a device is used.
"""

import sys as _sys

from .engine import (AudioFormat, CodecError, DeviceError, DeviceLost, DeviceNotFound,
                     InputRequirement, Manifest, ManifestError, ModelError, Node, NodeError,
                     NodeRegistry, Param, Pipeline, PipelineBroken, PipelineClosed,
                     RemoteMediaError, RuntimeData, SerializationError, Session, UnknownNodeType,
                     UsageError, from_runtime_data, load_manifest, node_function, register_node,
                     registry, to_runtime_data)
from .upstream_api import (execute_pipeline, execute_pipeline_with_input, get_runtime_version,
                           is_available)
from . import upstream_api

__version__ = "0.1.0"

# `remotemedia.runtime`, the upstream API's module name that the README documents, is an alias of
# upstream_api (one module object: `import remotemedia.runtime` finds it here).
runtime = _sys.modules[__name__ + ".runtime"] = upstream_api

__all__ = [
    "AudioFormat", "CodecError", "DeviceError", "DeviceLost", "DeviceNotFound", "InputRequirement",
    "Manifest", "ManifestError", "ModelError", "Node", "NodeError", "NodeRegistry", "Param",
    "Pipeline", "PipelineBroken", "PipelineClosed", "RemoteMediaError", "RuntimeData",
    "SerializationError", "Session", "UnknownNodeType", "UsageError", "__version__",
    "execute_pipeline", "execute_pipeline_with_input", "from_runtime_data", "get_runtime_version",
    "is_available", "load_manifest", "node_function", "register_node", "registry",
    "to_runtime_data",
]
